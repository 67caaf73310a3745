#!/usr/bin/env python3
"""End-to-end tests of the web dashboard (issue 14) in real headless Chromium.

Starts the stockd binary on a free port with a temp data file and four tokens (admin,
write, read, write restricted to one warehouse), seeds a small shop over the API, then
drives Debian's Chromium through Playwright for Python (the pip package only: the browser
is the system one, given by `executable_path`; `playwright install` is never needed).

    python3 tests/ui/test_dashboard.py                 # build first: cargo build --bin stockd
    python3 tests/ui/test_dashboard.py --screenshots   # also rewrite docs/screenshots/*.png
    python3 tests/ui/test_dashboard.py -k scan         # only tests whose name contains "scan"

Environment: STOCKD_BIN (default target/debug/stockd), CHROMIUM (default: chromium on PATH).

Waits are for conditions, never fixed sleeps: every `expect(...)` polls until it holds or
its timeout passes (generous: the suite runs on a busy 2-core machine). The one timing
assertion — a movement made through the API shows on an open levels page within 2 s — is
measured from just before the API call until the cell shows the new number.
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
# Generous: Chromium and the daemon share 2 cores with other work.
WAIT_MS = 15_000
# The bound for a movement made elsewhere to show on an open page.
LIVE_BOUND_S = 2.0
START_TIMEOUT_S = 60
STOP_GRACE_S = 3
WIDTHS = {"desktop": (1280, 800), "phone": (360, 740)}


# ---------------------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------------------

class Daemon:
    """The real binary on a free port (listen 127.0.0.1:0), with tokens from a temp config."""

    def __init__(self, binary, open_mode=False):
        self.dir = Path(tempfile.mkdtemp(prefix="stockd-ui-"))
        names = () if open_mode else ("admin", "writer", "reader", "north")
        self.tokens = {name: f"stk_ui_{name}_{secrets.token_hex(16)}" for name in names}
        scopes = {
            "admin": '["admin"]',
            "writer": '["inventory:write"]',
            "reader": '["inventory:read"]',
            "north": '["inventory:write"]\nwarehouses = ["north"]',
        }
        lines = [
            "[server]", 'listen = "127.0.0.1:0"', "workers = 2", "",
            "[storage]", f'path = "{self.dir / "ui.redb"}"', "",
            "[backup]", f'dir = "{self.dir / "backups"}"', "keep = 3", "",
        ]
        for name, token in self.tokens.items():
            digest = hashlib.sha256(token.encode()).hexdigest()
            lines += ["[[tokens]]", f'name = "{name}"', f'sha256 = "{digest}"', f"scopes = {scopes[name]}", ""]
        config = self.dir / "stockd.toml"
        config.write_text("\n".join(lines))
        self.out = open(self.dir / "stdout", "w+")
        self.err = open(self.dir / "stderr", "w+")
        self.binary = binary
        self.proc = subprocess.Popen([binary, "serve", "--config", str(config)], stdout=self.out, stderr=self.err,
                                     env={**os.environ, "RUST_LOG": "warn"})
        self.base = self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.out.seek(0)
            m = re.search(r"stockd listening on (http://\S+)", self.out.read())
            if m:
                base = m.group(1).rstrip("/")
                while time.monotonic() < deadline:
                    try:
                        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
                            if r.status == 200:
                                return base
                    except (urllib.error.URLError, ConnectionError):
                        pass
                    time.sleep(0.05)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.err.seek(0)
        raise RuntimeError(f"the daemon did not start: {self.err.read()[-2000:]}")

    def call(self, method, path, body=None, token="admin", headers=None):
        """(status, headers, JSON or text) of one API call."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token and token in self.tokens:
            req.add_header("Authorization", f"Bearer {self.tokens[token]}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw, status, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, e.headers
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw

    def ok(self, method, path, body=None, token="admin"):
        status, _, out = self.call(method, path, body, token)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {out}"
        return out

    def on_hand(self, product, warehouse):
        rows = self.ok("GET", f"/api/inventory?product_id={product}&warehouse_id={warehouse}")["data"]
        return rows[0]["quantity_on_hand"] if rows else 0

    def stop(self):
        # A graceful stop waits for requests in flight, and a dashboard's change-feed long
        # poll is one for up to 10 s after its tab closed: the data is temporary, so the
        # suite does not wait for it.
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def seed(d):
    """A small shop: three warehouses, four products, some stock, a transfer in transit and
    a reservation."""
    d.ok("PUT", "/api/warehouses/default", {"name": "Shop floor"})
    d.ok("PUT", "/api/warehouses/north", {"name": "North store"})
    d.ok("PUT", "/api/warehouses/south", {"name": "South depot"})
    products = [
        ("mug", "MUG-1", "Blue mug", "4006381333931"),
        ("tea", "TEA-1", "Green tea", "5012345678900"),
        ("jar", "JAR-1", "Glass jar", "7612345678904"),
        ("pot", "POT-1", "Tea pot", "8712345678906"),
    ]
    for pid, sku, name, barcode in products:
        d.ok("PUT", f"/api/products/{pid}", {"sku": sku, "name": name, "barcode": barcode, "unit_cost": 2.5})
    moves = [("mug", "default", 20), ("tea", "default", 5), ("jar", "default", 12), ("pot", "default", 4),
             ("mug", "north", 10), ("tea", "south", 3), ("pot", "south", 7)]
    for pid, wh, qty in moves:
        d.ok("POST", "/api/inventory/movements", {"product_id": pid, "warehouse_id": wh, "movement_type": "in",
                                                  "quantity": qty, "reason": "opening stock"})
    d.ok("POST", "/api/inventory/movements", {"product_id": "mug", "warehouse_id": "default", "movement_type": "out",
                                              "quantity": 3, "reason": "sold"})
    d.ok("PATCH", "/api/inventory/levels/tea/default", {"reorder_point": 10})
    transfer = d.ok("POST", "/api/inventory/movements", {"product_id": "jar", "warehouse_id": "default", "movement_type": "transfer",
                                                         "quantity": 4, "to_warehouse_id": "north", "in_transit": True})
    d.transfer_id = transfer["data"]["transfer_id"]
    d.ok("POST", "/api/inventory/reservations", {"product_id": "mug", "warehouse_id": "default", "quantity": 2,
                                                 "ttl_seconds": 86400, "reference_id": "order-1001"})


# ---------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------

class Session:
    """One browser context (its own sessionStorage) with a record of every request and
    every console error, so a test can assert nothing left the daemon and CSP blocked nothing."""

    def __init__(self, browser, daemon, width="desktop", locale="en-US"):
        w, hgt = WIDTHS[width]
        self.daemon = daemon
        self.context = browser.new_context(viewport={"width": w, "height": hgt}, locale=locale)
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.requests = []
        self.console_errors = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        # Chromium logs every 4xx answer of a fetch as a console error; the pages expect some
        # (an unknown scanned code is a 404, so is /admin/sinks before it exists). Any other
        # console error — a CSP violation, a script error — fails the test.
        self.page.on("console", lambda m: m.type == "error" and not m.text.startswith(
            "Failed to load resource: the server responded with a status of 4") and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def open(self, hash_path=""):
        self.page.goto(f"{self.daemon.base}/ui/{hash_path}")

    def sign_in(self, token_name, then=None):
        self.open()
        page = self.page
        page.get_by_label("Access token").fill(self.daemon.tokens[token_name])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Stock levels")).to_be_visible()
        if then:
            self.go(then)

    def go(self, hash_path):
        self.page.evaluate("h => { location.hash = h }", hash_path)

    def outside_requests(self):
        return [u for u in self.requests if not (u.startswith(self.daemon.base + "/") or u.startswith("data:"))]

    def close(self):
        self.context.close()


def level_row(page, product_name, warehouse_name):
    return page.locator("tbody tr").filter(has_text=product_name).filter(has_text=warehouse_name)


def cell(row, label):
    return row.locator(f'td[data-label="{label}"]')


# ---------------------------------------------------------------------------------------
# The tests (each gets the browser and the seeded daemon; they run in this order)
# ---------------------------------------------------------------------------------------

def test_static_shell_needs_no_credential_and_sends_csp(browser, d):
    status, hdrs, _ = d.call("GET", "/ui/", token=None)
    assert status == 200, status
    csp = hdrs.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp, csp
    # `/` redirects to the dashboard.
    req = urllib.request.Request(d.base + "/")
    opener = urllib.request.build_opener(type("NoRedirect", (urllib.request.HTTPRedirectHandler,), {"redirect_request": lambda *a: None}))
    try:
        opener.open(req, timeout=10)
        raise AssertionError("/ did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code in (301, 302, 303, 307, 308) and e.headers["Location"] == "/ui/", (e.code, e.headers["Location"])
    # The data is not: the API still wants a token.
    status, _, body = d.call("GET", "/api/inventory", token=None)
    assert status == 401, (status, body)
    # In the browser: the header is on the page as loaded, and the assets are versioned and cached.
    s = Session(browser, d)
    try:
        response = s.page.goto(f"{d.base}/ui/")
        assert "default-src 'self'" in response.headers.get("content-security-policy", "")
        expect(s.page.get_by_label("Access token")).to_be_focused()
        asset = next(u for u in s.requests if u.endswith("/app.js"))
        status, hdrs, _ = d.call("GET", asset[len(d.base):], token=None)
        assert status == 200 and "immutable" in hdrs["Cache-Control"], hdrs
        assert s.console_errors == [], s.console_errors
    finally:
        s.close()


def test_a_bad_token_is_refused_and_a_401_returns_to_sign_in(browser, d):
    s = Session(browser, d)
    try:
        s.open()
        s.page.get_by_label("Access token").fill("stk_not_a_real_token_0000000000")
        s.page.get_by_role("button", name="Sign in").click()
        expect(s.page.get_by_role("alert")).to_contain_text("That token was not accepted")
        assert s.page.evaluate("sessionStorage.length") == 0
        # A token that stops working mid-session (revoked, daemon reconfigured): any 401
        # returns to sign-in, with the server's words.
        s.sign_in("reader")
        s.page.evaluate("sessionStorage.setItem('stockd.token', 'stk_revoked_0000000000000000')")
        s.go("#/transfers")
        expect(s.page.get_by_label("Access token")).to_be_visible()
        expect(s.page.get_by_role("alert")).to_contain_text("You were signed out")
        assert s.page.evaluate("sessionStorage.length") == 0
    finally:
        s.close()


def test_read_token_sees_levels_but_no_write_controls(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("reader")
        page = s.page
        expect(level_row(page, "Blue mug", "Shop floor")).to_be_visible()
        # Keyboard only: the page's heading has the focus, Tab reaches the search, Enter searches.
        expect(page.get_by_role("heading", name="Stock levels")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_label("Search by name, SKU or barcode")).to_be_focused()
        page.keyboard.type("TEA-1")
        page.keyboard.press("Enter")
        expect(page.locator("tbody")).not_to_contain_text("Blue mug")
        expect(level_row(page, "Green tea", "South depot")).to_be_visible()
        s.go("#/levels")
        # No count page, no reorder point inputs, no admin pages.
        nav = page.get_by_role("navigation", name="Pages")
        expect(nav.get_by_role("link", name="Levels")).to_be_visible()
        expect(nav.get_by_role("link", name="Count")).to_have_count(0)
        expect(nav.get_by_role("link", name="Backups")).to_have_count(0)
        expect(page.locator('input[aria-label^="Reorder point"]')).to_have_count(0)
        s.go("#/product/mug")
        expect(page.get_by_role("heading", name="Blue mug")).to_be_visible()
        expect(page.get_by_text("This token may only read stock.")).to_be_visible()
        # The token is in sessionStorage, never in a cookie or the URL.
        assert s.context.cookies() == []
        assert all(d.tokens["reader"] not in u for u in s.requests)
        assert s.page.evaluate("sessionStorage.getItem('stockd.token')") == d.tokens["reader"]
    finally:
        s.close()


def test_write_token_searches_and_filters_levels(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer")
        page = s.page
        expect(level_row(page, "Green tea", "South depot")).to_be_visible()
        # Search by name.
        page.get_by_label("Search by name, SKU or barcode").fill("mug")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("tbody tr")).to_have_count(2)  # Shop floor and North store
        expect(page.locator("tbody")).not_to_contain_text("Green tea")
        # Search by barcode.
        page.get_by_label("Search by name, SKU or barcode").fill("5012345678900")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("tbody tr")).to_have_count(2)
        expect(page.locator("tbody")).to_contain_text("Green tea")
        # Warehouse filter.
        page.get_by_label("Warehouse").select_option("south")
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(level_row(page, "Green tea", "South depot")).to_be_visible()
        # Low stock: tea at the shop floor (5 ≤ reorder point 10).
        page.get_by_label("Search by name, SKU or barcode").fill("")
        page.get_by_label("Warehouse").select_option("")
        page.get_by_label("Low stock only").check()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(level_row(page, "Green tea", "Shop floor")).to_be_visible()
        expect(cell(level_row(page, "Green tea", "Shop floor"), "Status")).to_have_text("Low")
        # Edit the reorder point (write token): the filter then drops the row.
        page.get_by_label("Reorder point of Green tea in Shop floor").fill("2")
        level_row(page, "Green tea", "Shop floor").get_by_role("button", name="Save").click()
        expect(page.get_by_text("No stock level matches.")).to_be_visible()
        assert d.ok("GET", "/api/inventory?product_id=tea&warehouse_id=default")["data"][0]["reorder_point"] == 2
        d.ok("PATCH", "/api/inventory/levels/tea/default", {"reorder_point": 10})
    finally:
        s.close()


def test_record_a_movement_shows_before_after_and_the_level(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer")
        page = s.page
        page.get_by_role("link", name="Blue mug").first.click()
        expect(page.get_by_role("heading", name="Blue mug")).to_be_visible()
        before = d.on_hand("mug", "default")
        page.get_by_label("Warehouse", exact=True).select_option("default")
        page.get_by_label("Movement", exact=True).select_option("in")
        page.get_by_label("Quantity").fill("5")
        page.get_by_label("Reason").fill("delivery 42")
        page.get_by_role("button", name="Record movement").click()
        expect(page.get_by_role("status").filter(has_text="Recorded")).to_contain_text(
            f"on hand in Shop floor went from {before:,} to {before + 5:,}")
        assert d.on_hand("mug", "default") == before + 5
        newest = page.get_by_role("table", name=re.compile("Movements of Blue mug")).locator("tbody tr").first
        expect(cell(newest, "Before")).to_have_text(f"{before:,}")
        expect(cell(newest, "After")).to_have_text(f"{before + 5:,}")
        expect(cell(newest, "Reason")).to_contain_text("delivery 42")
        levels = page.get_by_role("table", name="Levels of Blue mug")
        expect(cell(levels.locator("tr").filter(has_text="Shop floor"), "On hand")).to_have_text(f"{before + 5:,}")
        expect(page.locator("svg.chart")).to_be_visible()
        # A bad quantity is refused in words, and nothing is sent.
        page.get_by_label("Quantity").fill("0")
        page.get_by_role("button", name="Record movement").click()
        expect(page.get_by_role("alert")).to_contain_text("Enter a whole number greater than 0")
        # The server's own refusal (more out than available) shows its detail.
        page.get_by_label("Movement", exact=True).select_option("out")
        page.get_by_label("Quantity").fill("100000")
        page.get_by_role("button", name="Record movement").click()
        expect(page.get_by_role("alert")).to_contain_text("Not saved")
        assert d.on_hand("mug", "default") == before + 5
    finally:
        s.close()


def test_compare_and_set_conflict_is_shown_not_swallowed(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer", then="#/product/pot")
        page = s.page
        expect(page.get_by_role("heading", name="Tea pot")).to_be_visible()
        page.get_by_label("Warehouse", exact=True).select_option("default")
        start = d.on_hand("pot", "default")
        expect(page.locator(".basis strong")).to_have_text(f"{start:,}")
        # Someone else counts the same shelf meanwhile, while this user is in the form.
        page.get_by_label("Quantity").focus()
        d.ok("POST", "/api/inventory/movements", {"product_id": "pot", "warehouse_id": "default", "movement_type": "adjustment", "quantity": 2})
        expect(page.locator(".basis .warn")).to_contain_text(f"It is now {start + 2:,}")
        page.get_by_label("Movement", exact=True).select_option("out")
        page.get_by_label("Quantity").fill("1")
        page.get_by_role("button", name="Record movement").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Not saved: the quantity changed since you looked")
        assert d.on_hand("pot", "default") == start + 2, "the refused movement changed stock"
        # Taking the new quantity on purpose, the same movement goes through.
        page.get_by_role("button", name="Use the new quantity").click()
        page.get_by_role("button", name="Record movement").click()
        expect(page.get_by_role("status").filter(has_text="Recorded")).to_contain_text(f"went from {start + 2:,} to {start + 1:,}")
    finally:
        s.close()


def test_bulk_count_with_a_bad_line_shows_its_error_and_changes_nothing(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer", then="#/counts")
        page = s.page
        expect(page.get_by_role("heading", name="Shelf count")).to_be_visible()
        page.get_by_label("Warehouse").select_option("default")
        mug, jar = d.on_hand("mug", "default"), d.on_hand("jar", "default")
        # An unknown code: caught per line, nothing sent.
        # Scanner style: code + Enter moves to the count, count + Enter to the next line.
        page.get_by_label("Line 1: product (SKU, barcode or id)").focus()
        page.keyboard.type("MUG-1")
        page.keyboard.press("Enter")
        expect(page.get_by_label("Line 1: counted quantity")).to_be_focused()
        page.keyboard.type("30")
        page.keyboard.press("Enter")
        expect(page.get_by_label("Line 2: product (SKU, barcode or id)")).to_be_focused()
        page.get_by_label("Line 2: product (SKU, barcode or id)").fill("NOPE-404")
        page.get_by_label("Line 2: counted quantity").fill("1")
        page.get_by_role("button", name="Send count").click()
        line2 = page.locator("tbody tr").nth(1)
        expect(line2.locator(".line-error")).to_contain_text("No product has the code")
        expect(page.get_by_role("alert").filter(has_text="Nothing was saved")).to_be_visible()
        assert d.on_hand("mug", "default") == mug
        # A line the server refuses (a negative count): its detail lands on that line.
        page.get_by_label("Line 2: product (SKU, barcode or id)").fill("7612345678904")
        page.get_by_label("Line 2: counted quantity").fill("-1")
        page.get_by_role("button", name="Send count").click()
        expect(line2.locator(".line-error")).to_contain_text("adjustments[1].actual_quantity")
        expect(page.get_by_role("alert").filter(has_text="Nothing was saved")).to_be_visible()
        assert (d.on_hand("mug", "default"), d.on_hand("jar", "default")) == (mug, jar), "a refused count changed stock"
        # A line the ledger refuses (the same product twice): `item 1: …` lands on line 2.
        page.get_by_label("Line 2: product (SKU, barcode or id)").fill("4006381333931")
        page.get_by_label("Line 2: counted quantity").fill("5")
        page.get_by_role("button", name="Send count").click()
        expect(line2.locator(".line-error")).to_contain_text("appear twice")
        expect(page.get_by_role("alert").filter(has_text="Nothing was saved")).to_be_visible()
        assert (d.on_hand("mug", "default"), d.on_hand("jar", "default")) == (mug, jar), "a refused count changed stock"
        # Fixed, the whole count goes through at once.
        page.get_by_label("Line 2: product (SKU, barcode or id)").fill("JAR-1")
        page.get_by_label("Line 2: counted quantity").fill("9")
        page.get_by_role("button", name="Send count").click()
        expect(page.get_by_role("status").filter(has_text="Count saved")).to_contain_text("2 lines")
        expect(line2.locator(".line-error")).to_contain_text(f"{jar:,} → 9")
        assert (d.on_hand("mug", "default"), d.on_hand("jar", "default")) == (30, 9)
    finally:
        s.close()


def test_receive_a_transfer(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer", then="#/transfers")
        page = s.page
        row = page.locator("tbody tr").filter(has_text="Glass jar")
        expect(row).to_have_count(1)
        expect(cell(row, "To")).to_have_text("North store")
        before = d.on_hand("jar", "north")
        row.get_by_role("button", name=re.compile("^Receive")).click()
        expect(page.get_by_role("status").filter(has_text="Received")).to_contain_text(f"on hand {before:,} → {before + 4:,}")
        expect(page.get_by_text("Nothing is in transit.")).to_be_visible()
        assert d.on_hand("jar", "north") == before + 4
        status, _, body = d.call("POST", f"/api/inventory/transfers/{d.transfer_id}/receive")
        assert status == 409 and body["code"] == "already_received", body
    finally:
        s.close()


def test_scan_mode_opens_the_movement_form(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer", then="#/scan")
        page = s.page
        code = page.get_by_label("Barcode or SKU")
        expect(code).to_be_focused()
        # A scanner types the code and Enter.
        page.keyboard.type("9999999999999")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("Unknown code")
        expect(code).to_be_focused()
        page.keyboard.type("4006381333931")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Blue mug")).to_be_visible()
        expect(page.get_by_label("Quantity")).to_be_focused()
        # Keyboard only: type the quantity, Enter submits.
        before = d.on_hand("mug", "default")
        page.get_by_label("Warehouse", exact=True).select_option("default")
        page.get_by_label("Quantity").focus()
        page.keyboard.type("1")
        page.keyboard.press("Enter")
        expect(page.get_by_role("status").filter(has_text="Recorded")).to_be_visible()
        assert d.on_hand("mug", "default") == before + 1
    finally:
        s.close()


def test_reservations_list_and_release(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("writer", then="#/reservations")
        page = s.page
        row = page.locator("tbody tr").filter(has_text="order-1001")
        expect(cell(row, "Quantity")).to_have_text("2")
        row.get_by_role("button", name=re.compile("^Release")).click()
        expect(page.get_by_role("status").filter(has_text="Released")).to_be_visible()
        expect(page.get_by_text("No active reservations.")).to_be_visible()
    finally:
        s.close()


def test_a_movement_made_through_the_api_shows_within_2_s(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("reader")
        page = s.page
        page.get_by_label("Warehouse").select_option("north")
        on_hand = cell(level_row(page, "Blue mug", "North store"), "On hand")
        before = d.on_hand("mug", "north")
        expect(on_hand).to_have_text(f"{before:,}")
        # Feed is live before the clock starts (its first long poll is out).
        expect(page.locator("#live")).to_have_text("Live")
        started = time.monotonic()
        d.ok("POST", "/api/inventory/movements", {"product_id": "mug", "warehouse_id": "north", "movement_type": "in", "quantity": 7})
        expect(on_hand).to_have_text(f"{before + 7:,}", timeout=WAIT_MS)
        elapsed = time.monotonic() - started
        print(f"    live update shown after {elapsed * 1000:.0f} ms")
        assert elapsed <= LIVE_BOUND_S, f"the movement showed after {elapsed:.2f} s (bound {LIVE_BOUND_S} s)"
    finally:
        s.close()


def test_a_restricted_token_never_sees_the_other_warehouse(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("north")
        page = s.page
        expect(level_row(page, "Blue mug", "North store")).to_be_visible()
        options = page.get_by_label("Warehouse").locator("option").all_text_contents()
        assert options == ["All my warehouses", "North store"], options
        for path in ("#/levels", "#/product/mug", "#/product/tea", "#/transfers", "#/reservations", "#/analytics", "#/counts"):
            s.go(path)
            expect(page.locator("main h1")).to_be_visible()
            expect(page.locator("main .notice.error")).to_have_count(0)
            text = page.locator("main").inner_text()
            for foreign in ("Shop floor", "South depot"):
                assert foreign not in text, f"{path} shows {foreign!r}: {text[:400]}"
        # Its API answers for the other warehouse stay closed too.
        status, _, _ = d.call("GET", "/api/inventory?warehouse_id=south", token="north")
        assert status == 403
    finally:
        s.close()


def test_admin_backups_and_sinks(browser, d):
    s = Session(browser, d)
    try:
        s.sign_in("admin", then="#/admin/backups")
        page = s.page
        expect(page.get_by_text("No backups yet.")).to_be_visible()
        page.get_by_role("button", name="Take a backup now").click()
        expect(page.get_by_role("status").filter(has_text="Backup written")).to_be_visible()
        expect(page.locator("tbody tr")).to_have_count(1)
        s.go("#/admin/sinks")
        expect(page.get_by_role("heading", name="Outbound sinks")).to_be_visible()
        # Before `/admin/sinks` exists this says so; after, it lists sinks (none configured here).
        expect(page.get_by_text(re.compile("not available in this version|No sinks are configured"))).to_be_visible()
    finally:
        s.close()


def test_sinks_page_follows_the_outbound_contract(browser, d):
    """`/admin/sinks` as API.md "Outbound" describes it, answered by the browser (the route
    may not exist in this build): the page lists position, lag and state and pauses/resumes
    through `POST /admin/sinks/{id}/pause|resume`."""
    sinks = [
        {"id": "erp", "kind": "webhook", "target": "https://erp.example.com/hooks/stock", "position": 1200, "lag": 3,
         "state": "retrying", "attempts": 4, "last_error": "HTTP 502 from the receiver", "last_attempt_at": "2026-01-15T15:30:00.000Z"},
        {"id": "nats", "kind": "nats", "target": "nats://127.0.0.1:4222", "position": 1203, "lag": 0,
         "state": "paused", "attempts": 0, "last_error": None, "last_attempt_at": None},
    ]
    posts = []

    def answer(route):
        req = route.request
        if req.method == "GET":
            route.fulfill(status=200, content_type="application/json", body=json.dumps({"data": sinks}))
            return
        assert req.headers.get("authorization") == f"Bearer {d.tokens['admin']}"
        posts.append(req.url[len(d.base):])
        sink_id, verb = req.url.rsplit("/", 2)[-2:]
        for sink in sinks:
            if sink["id"] == sink_id:
                sink["state"] = "paused" if verb == "pause" else "ok"
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"data": {}}))

    # German number formatting: the page follows the browser's locale.
    s = Session(browser, d, locale="de-DE")
    try:
        s.page.route(re.compile(r".*/admin/sinks(/.*)?$"), answer)
        s.sign_in("admin", then="#/admin/sinks")
        page = s.page
        erp = page.locator("tbody tr").filter(has_text="erp")
        expect(cell(erp, "Lag")).to_have_text("3")
        expect(cell(erp, "Position")).to_have_text("1.200")
        expect(cell(erp, "State")).to_have_text("retrying")
        expect(cell(erp, "Last error")).to_have_text("HTTP 502 from the receiver")
        erp.get_by_role("button", name="Pause sink erp").click()
        expect(page.get_by_role("status").filter(has_text="Sink erp paused")).to_be_visible()
        expect(cell(erp, "State")).to_have_text("paused")
        page.locator("tbody tr").filter(has_text="nats://").get_by_role("button", name="Resume sink nats").click()
        expect(page.get_by_role("status").filter(has_text="Sink nats resumed")).to_be_visible()
        assert posts == ["/admin/sinks/erp/pause", "/admin/sinks/nats/resume"], posts
    finally:
        s.close()


def test_open_mode_needs_no_sign_in(browser, d):
    """A daemon with no credentials (loopback only, every caller admin): the dashboard opens
    on the levels at once and says it runs open."""
    open_daemon = Daemon(d.binary, open_mode=True)
    try:
        open_daemon.ok("PUT", "/api/products/mug", {"sku": "MUG-1", "name": "Blue mug"})
        open_daemon.ok("POST", "/api/inventory/movements", {"product_id": "mug", "movement_type": "in", "quantity": 3})
        s = Session(browser, open_daemon)
        try:
            s.open()
            expect(s.page.get_by_role("heading", name="Stock levels")).to_be_visible()
            expect(s.page.get_by_text("open mode")).to_be_visible()
            expect(level_row(s.page, "Blue mug", "default")).to_be_visible()
            expect(s.page.get_by_role("button", name="Sign out")).to_have_count(0)
        finally:
            s.close()
    finally:
        open_daemon.stop()


PAGES = [
    ("levels", "#/levels", "Stock levels"),
    ("product", "#/product/mug", "Blue mug"),
    ("counts", "#/counts", "Shelf count"),
    ("transfers", "#/transfers", "Transfers in transit"),
    ("reservations", "#/reservations", "Reservations"),
    ("analytics", "#/analytics", "Analytics"),
    ("scan", "#/scan", "Scan"),
    ("backups", "#/admin/backups", "Backups"),
    ("sinks", "#/admin/sinks", "Outbound sinks"),
]


def test_every_page_at_1280_and_360_px_stays_on_the_daemon(browser, d, shots=None):
    """Every page at both widths: it renders, CSP blocks nothing (no console error), no
    request leaves the daemon, nothing is wider than the phone, and every control has a
    label. Screenshots go to a temp dir, or to docs/screenshots with --screenshots."""
    # Something to show: a transfer in transit and a reservation.
    d.ok("POST", "/api/inventory/movements", {"product_id": "tea", "warehouse_id": "south", "movement_type": "transfer",
                                              "quantity": 1, "to_warehouse_id": "north", "in_transit": True})
    d.ok("POST", "/api/inventory/reservations", {"product_id": "tea", "warehouse_id": "default", "quantity": 1,
                                                 "ttl_seconds": 86400, "reference_id": "order-1002"})
    out = shots or Path(tempfile.mkdtemp(prefix="stockd-shots-"))
    for width in ("desktop", "phone"):
        s = Session(browser, d, width)
        try:
            s.open()
            if shots:
                s.page.screenshot(path=str(out / f"signin-{WIDTHS[width][0]}.png"))
            s.sign_in("admin")
            for name, path, heading in PAGES:
                s.go(path)
                expect(s.page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
                expect(s.page.locator("main .notice.error")).to_have_count(0)
                s.page.wait_for_function("() => !document.querySelector('main button:disabled')")
                unlabelled = s.page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
                    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
                assert unlabelled == [], f"{name}: controls without a label: {unlabelled}"
                if width == "phone":
                    wide = s.page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= WIDTHS["phone"][0], f"{name} is {wide} px wide at 360 px"
                s.page.screenshot(path=str(out / f"{name}-{WIDTHS[width][0]}.png"), full_page=True)
            assert s.outside_requests() == [], s.outside_requests()
            assert s.console_errors == [], s.console_errors
        finally:
            s.close()
    if not shots:
        shutil.rmtree(out, ignore_errors=True)
    elif shutil.which("pngquant"):
        # Committed files: a 256-colour palette keeps them a third of the size, same look.
        pngs = sorted(str(p) for p in out.glob("*.png"))
        subprocess.run(["pngquant", "--quality=70-95", "--speed", "1", "--strip", "--force", "--ext", ".png", *pngs], check=True)
    else:
        print("    (pngquant not found: the screenshots are left uncompressed)")


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--screenshots", action="store_true", help="rewrite docs/screenshots/*.png")
    ap.add_argument("-k", default="", help="only tests whose name contains this")
    args = ap.parse_args()
    binary = os.environ.get("STOCKD_BIN") or str(REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "stockd")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("no chromium on PATH (apt-get install chromium, or set CHROMIUM)")
    daemon = Daemon(binary)
    failed = []
    started = time.monotonic()
    try:
        seed(daemon)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                for test in TESTS:
                    if args.k not in test.__name__:
                        continue
                    t0 = time.monotonic()
                    try:
                        if test is test_every_page_at_1280_and_360_px_stays_on_the_daemon and args.screenshots:
                            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                            test(browser, daemon, shots=SCREENSHOTS)
                        else:
                            test(browser, daemon)
                        print(f"ok   {test.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
                    except Exception:  # noqa: BLE001 — report every failure, then exit 1
                        failed.append(test.__name__)
                        print(f"FAIL {test.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
                        traceback.print_exc()
            finally:
                browser.close()
    finally:
        daemon.err.seek(0)
        log = daemon.err.read()
        daemon.stop()
    print(f"{len(failed)} failed, {time.monotonic() - started:.1f} s in all")
    if failed:
        print("the daemon's log (tail):\n" + log[-3000:])
        sys.exit(1)


if __name__ == "__main__":
    main()
