// The dashboard: sign-in, navigation (hash routes), and the change feed that keeps the
// open page current.

import { ApiError, clearToken, loadSession, onChanges, onFeedState, session, setToken, startFeed, stopFeed, token, whenUnauthenticated } from "./api.js";
import { backups, sinks } from "./admin.js";
import { field, fill, h, notice } from "./dom.js";
import { analytics, counts, errorText, levels, product, reservations, scan, transfers } from "./pages.js";

/** A burst of feed news reloads the page once, this long after the first of it… */
const REFRESH_DEBOUNCE_MS = 100;
/** …and a busy shop reloads an open page at most once per this (the server's load stays
 * bounded however many movements a second come in). */
const REFRESH_SPACING_MS = 1000;

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const live = document.getElementById("live");

/** [hash path, label, page, who may see it]. */
const PAGES = [
  ["levels", "Levels", levels, () => true],
  ["counts", "Count", counts, () => session.canWrite],
  ["transfers", "Transfers", transfers, () => true],
  ["reservations", "Reservations", reservations, () => true],
  ["analytics", "Analytics", analytics, () => true],
  ["scan", "Scan", scan, () => true],
  ["admin/backups", "Backups", backups, () => session.isAdmin],
  ["admin/sinks", "Sinks", sinks, () => session.isAdmin],
];

let current = {};
let signedIn = false;
/** The daemon runs with no credentials configured (loopback only): no sign-in to do. */
let openMode = false;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { path: decodeURIComponent(path || ""), params: new URLSearchParams(query) };
}

async function route() {
  if (!token() && !openMode) {
    // A daemon with no credentials configured answers without a token: try once.
    try {
      await loadSession();
      openMode = true;
      signedIn = true;
      startFeed();
    } catch {
      signIn();
      return;
    }
  }
  if (!signedIn) {
    try {
      await loadSession();
      signedIn = true;
      startFeed();
    } catch (e) {
      signOut(errorText(e));
      return;
    }
  }
  drawNav();
  const { path, params } = parseHash();
  let page;
  if (path.startsWith("product/")) {
    page = await product(main, params, path.slice("product/".length));
  } else {
    const entry = PAGES.find(([p, , , may]) => p === path && may()) || PAGES[0];
    if (entry[0] !== path) history.replaceState(null, "", `#/${entry[0]}`);
    page = await entry[2](main, params);
  }
  current = page || {};
  markCurrent(path);
  document.title = `${(main.querySelector("h1") || {}).textContent || "stockd"} · stockd`;
  if (!params.get("scan") && path !== "scan") {
    const h1 = main.querySelector("h1");
    // The new page's heading takes the focus (keyboard and screen-reader users start there),
    // unless the page focused a control of its own.
    if (h1 && !main.contains(document.activeElement)) {
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
    }
  }
}

function drawNav() {
  const links = PAGES.filter(([, , , may]) => may()).map(([p, label]) => h("li", {}, h("a", { href: `#/${p}`, "data-path": p }, label)));
  const out = openMode
    ? h("span", { class: "badge low", title: "No credentials are configured: every caller is admin (loopback only)." }, "open mode")
    : h("button", { type: "button", class: "link", onclick: () => signOut() }, "Sign out");
  fill(nav, h("ul", {}, links, h("li", { class: "who" }, h("span", { class: "name" }, session.name), out)));
}

function markCurrent(path) {
  for (const a of nav.querySelectorAll("a[data-path]")) {
    const here = a.dataset.path === path || (path.startsWith("product/") && a.dataset.path === "levels");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function signIn(message) {
  stopFeed();
  fill(nav);
  live.textContent = "";
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const msg = h("div", { class: "form-msg" }, message ? notice("error", message) : null);
  const form = h("form", { class: "signin", novalidate: true },
    field("Access token", input, "Paste the token you were given (stk_…). It is kept in this browser tab only, until you sign out or close the tab."),
    h("button", { type: "submit" }, "Sign in"), msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) {
      fill(msg, notice("error", "Paste your access token first."));
      return;
    }
    setToken(t);
    try {
      await loadSession();
    } catch (err) {
      clearToken();
      const why = err instanceof ApiError && err.status === 401 ? "That token was not accepted. " : err instanceof ApiError && err.status === 403 ? "This token may not read stock. " : "";
      fill(msg, notice("error", why, errorText(err)));
      input.select();
      return;
    }
    signedIn = true;
    startFeed();
    if (!location.hash || location.hash === "#/signin") location.hash = "#/levels";
    else route();
  });
  fill(main, h("h1", {}, "Sign in to stockd"), form);
  input.focus();
}

function signOut(message) {
  clearToken();
  signedIn = false;
  current = {};
  signIn(message);
}

whenUnauthenticated((err) => {
  if (signedIn) signOut(`You were signed out: ${err.detail}`);
});

let refreshTimer = null;
let lastRefresh = 0;
let news = [];
onChanges((movements) => {
  news.push(...movements);
  if (refreshTimer) return;
  const now = Date.now();
  const at = Math.max(now + REFRESH_DEBOUNCE_MS, lastRefresh + REFRESH_SPACING_MS);
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    lastRefresh = Date.now();
    const batch = news;
    news = [];
    if (current.refresh && (!current.concerns || batch.some(current.concerns))) current.refresh();
  }, at - now);
});

onFeedState((state) => {
  live.textContent = state === "live" ? "Live" : "Reconnecting…";
  live.className = `live ${state}`;
});

window.addEventListener("hashchange", route);
route();
