// The shop pages: levels, product, counts, transfers, reservations, analytics, scan.
// Each page builds its controls once and returns `{ refresh }`: the app calls it when the
// change feed brings news, and it reloads the page's data without touching what the user
// is typing.

import { api, ApiError, newKey, qs, session, warehouseName, warehouseScope } from "./api.js";
import { barChart, stepChart } from "./chart.js";
import { field, fill, h, money, notice, num, select, table, time } from "./dom.js";

const enc = encodeURIComponent;
/** Rows one list request asks for. */
const LIST_LIMIT = 200;
/** Products a search looks at. */
const SEARCH_PRODUCTS_MAX = 50;
/** Movements a product page shows (and charts). */
const HISTORY_LIMIT = 50;

/** The words a shop person reads for an API error: its problem+json `detail`. */
export function errorText(e) {
  if (e instanceof ApiError) return e.detail;
  return `Something went wrong: ${e && e.message ? e.message : e}`;
}

function warehouseOptions(allLabel) {
  const opts = session.warehouses.map((w) => [w.id, w.name]);
  return allLabel ? [["", allLabel], ...opts] : opts;
}

function productLink(p, params = "") {
  return h("a", { href: `#/product/${enc(p.id)}${params}` }, p.name || p.id);
}

/** Runs `load` now, and again on `refresh` — but not while a control inside `box` has the
 * focus (a feed update must not wipe a number being typed): then once focus leaves. */
function reloader(box, load) {
  let pending = false;
  box.addEventListener("focusout", () => {
    setTimeout(() => {
      if (pending && !box.contains(document.activeElement)) {
        pending = false;
        load();
      }
    }, 0);
  });
  return () => {
    const a = document.activeElement;
    if (a && box.contains(a) && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) {
      pending = true;
      return;
    }
    load();
  };
}

// ---- levels ----

export function levels(main, params) {
  const q = h("input", { type: "search", name: "q", value: params.get("q") || "", autocomplete: "off", spellcheck: "false" });
  const wh = select(warehouseOptions(session.restrictedTo ? "All my warehouses" : "All warehouses"), params.get("warehouse") || "", { name: "warehouse" });
  const low = h("input", { type: "checkbox", name: "low", checked: params.get("low") === "1" });
  const out = h("input", { type: "checkbox", name: "out", checked: params.get("out") === "1" });
  const status = h("p", { class: "count", role: "status" });
  const results = h("div", { class: "results" });
  const form = h("form", { role: "search", class: "filters", "aria-label": "Filter stock levels" },
    field("Search by name, SKU or barcode", q),
    field("Warehouse", wh),
    h("div", { class: "checks" },
      h("label", {}, low, " Low stock only"),
      h("label", {}, out, " Out of stock only")),
    h("button", { type: "submit" }, "Search"));
  const apply = () => {
    const p = new URLSearchParams();
    if (q.value.trim()) p.set("q", q.value.trim());
    if (wh.value) p.set("warehouse", wh.value);
    if (low.checked) p.set("low", "1");
    if (out.checked) p.set("out", "1");
    const s = p.toString();
    history.replaceState(null, "", `#/levels${s ? `?${s}` : ""}`);
    load();
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    apply();
  });
  wh.addEventListener("change", apply);
  low.addEventListener("change", apply);
  out.addEventListener("change", apply);

  let generation = 0;
  async function load() {
    const mine = ++generation;
    const filters = { low_stock: low.checked ? "true" : "", out_of_stock: out.checked ? "true" : "", limit: LIST_LIMIT };
    const whs = warehouseScope(wh.value);
    try {
      let pages;
      const text = q.value.trim();
      if (text) {
        const products = (await api(`/api/products${qs({ q: text, limit: SEARCH_PRODUCTS_MAX })}`)).data;
        pages = await Promise.all(products.flatMap((p) => whs.map((w) => api(`/api/inventory${qs({ ...filters, product_id: p.id, warehouse_id: w })}`))));
      } else {
        pages = await Promise.all(whs.map((w) => api(`/api/inventory${qs({ ...filters, warehouse_id: w })}`)));
      }
      if (mine !== generation) return;
      const rows = pages.flatMap((p) => p.data);
      rows.sort((a, b) => (a.product.name || "").localeCompare(b.product.name || "") || a.warehouse.name.localeCompare(b.warehouse.name));
      const more = pages.some((p) => p.meta.hasMore);
      status.textContent = `${num(rows.length)} ${rows.length === 1 ? "level" : "levels"}${more ? " (more exist: narrow the search)" : ""}`;
      fill(results, levelsTable(rows, load));
    } catch (e) {
      if (mine !== generation) return;
      status.textContent = "";
      fill(results, notice("error", errorText(e)));
    }
  }
  fill(main, h("h1", {}, "Stock levels"), form, status, results);
  load();
  return { refresh: reloader(results, load) };
}

function levelsTable(rows, reload) {
  const columns = [
    { label: "Product", cell: (r) => [productLink(r.product), h("small", { class: "sku" }, r.product.sku)] },
    { label: "Warehouse", cell: (r) => r.warehouse.name },
    { label: "On hand", num: true, cell: (r) => num(r.quantity_on_hand) },
    { label: "Allocated", num: true, cell: (r) => num(r.quantity_allocated) },
    { label: "Available", num: true, cell: (r) => num(r.quantity_available) },
    { label: "In transit", num: true, cell: (r) => num(r.quantity_in_transit) },
    { label: "Reorder point", num: true, cell: (r) => (session.canWrite ? reorderForm(r, reload) : num(r.reorder_point)) },
    { label: "Status", cell: (r) => stockBadge(r) },
  ];
  return table("Stock levels", columns, rows, "No stock level matches.");
}

function stockBadge(r) {
  if (r.quantity_available <= 0) return h("span", { class: "badge out" }, "Out of stock");
  if (r.reorder_point !== null && r.quantity_available <= r.reorder_point) return h("span", { class: "badge low" }, "Low");
  return h("span", { class: "badge ok" }, "OK");
}

function reorderForm(r, reload) {
  const input = h("input", { type: "number", min: "0", step: "1", inputmode: "numeric", value: r.reorder_point ?? "", class: "small",
    "aria-label": `Reorder point of ${r.product.name} in ${r.warehouse.name}` });
  const msg = h("span", { class: "inline-msg", role: "status" });
  const form = h("form", { class: "inline" }, input, h("button", { type: "submit", class: "small" }, "Save"), msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = Number.parseInt(input.value, 10);
    if (!Number.isInteger(value) || value < 0) {
      msg.textContent = "Enter a whole number, 0 or more.";
      return;
    }
    try {
      await api(`/api/inventory/levels/${enc(r.product.id)}/${enc(r.warehouse.id)}`, { method: "PATCH", body: { reorder_point: value } });
      msg.textContent = "Saved";
      input.blur();
      reload();
    } catch (err) {
      msg.textContent = errorText(err);
    }
  });
  return form;
}

// ---- product: levels, movement form (compare-and-set), chart, history ----

export async function product(main, params, id) {
  let p;
  try {
    p = (await api(`/api/products/${enc(id)}`)).data;
  } catch (e) {
    fill(main, h("h1", {}, "Product"), notice("error", errorText(e)), h("p", {}, h("a", { href: "#/levels" }, "Back to stock levels")));
    return {};
  }
  const levelsBox = h("div");
  const chartBox = h("div", { class: "chart-box" });
  const historyBox = h("div");
  /** on_hand per warehouse as last loaded (what the page shows). */
  const shown = new Map();
  /** on_hand per warehouse the form compares against: what the user saw when they started. */
  const expected = new Map();

  const form = movementForm(p, params, shown, expected, () => load());
  fill(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/levels" }, "Stock levels"), " › ", p.name),
    h("h1", {}, p.name),
    h("dl", { class: "facts" },
      h("dt", {}, "SKU"), h("dd", {}, p.sku),
      h("dt", {}, "Barcode"), h("dd", {}, p.barcode || "—"),
      h("dt", {}, "Category"), h("dd", {}, p.category || "—")),
    h("section", { "aria-labelledby": "levels-h" }, h("h2", { id: "levels-h" }, "Levels"), levelsBox),
    form.section,
    h("section", { "aria-labelledby": "chart-h" }, h("h2", { id: "chart-h" }, "On hand over time"), chartBox),
    h("section", { "aria-labelledby": "history-h" }, h("h2", { id: "history-h" }, "Movements"), historyBox));

  let firstLoad = true;
  async function load() {
    try {
      const inv = (await api(`/api/products/${enc(p.id)}/inventory`)).data;
      const rows = inv.warehouses.filter((r) => !session.restrictedTo || session.restrictedTo.includes(r.warehouse.id));
      shown.clear();
      for (const r of rows) shown.set(r.warehouse.id, r.quantity_on_hand);
      if (firstLoad && !params.get("warehouse") && rows.length > 0) form.choose(rows[0].warehouse.id);
      firstLoad = false;
      for (const w of session.warehouses) if (!expected.has(w.id)) expected.set(w.id, shown.get(w.id) ?? 0);
      fill(levelsBox, table(`Levels of ${p.name}`, [
        { label: "Warehouse", cell: (r) => r.warehouse.name },
        { label: "On hand", num: true, cell: (r) => num(r.quantity_on_hand) },
        { label: "Allocated", num: true, cell: (r) => num(r.quantity_allocated) },
        { label: "Available", num: true, cell: (r) => num(r.quantity_available) },
        { label: "In transit", num: true, cell: (r) => num(r.quantity_in_transit) },
        { label: "Status", cell: (r) => stockBadge(r) },
      ], rows, "No stock of this product yet."));
      form.update();
      const pages = await Promise.all(warehouseScope("").map((w) => api(`/api/inventory/movements${qs({ product_id: p.id, warehouse_id: w, limit: HISTORY_LIMIT })}`)));
      const moves = pages.flatMap((x) => x.data).sort((a, b) => b.seq - a.seq).slice(0, HISTORY_LIMIT);
      drawChart(moves);
      fill(historyBox, table(`Movements of ${p.name}, newest first`, [
        { label: "When", cell: (m) => time(m.created_at) },
        { label: "Warehouse", cell: (m) => warehouseName(m.warehouse_id) },
        { label: "Type", cell: (m) => KIND_WORDS[m.kind] || m.kind || m.movement_type },
        { label: "Change", num: true, cell: (m) => signed(m.balance_after - m.balance_before) },
        { label: "Before", num: true, cell: (m) => num(m.balance_before) },
        { label: "After", num: true, cell: (m) => num(m.balance_after) },
        { label: "By", cell: (m) => (m.created_by && m.created_by.name) || "—" },
        { label: "Reason", cell: (m) => [m.reason, m.notes].filter(Boolean).join(" — ") || "—" },
      ], moves, "No movements yet."));
    } catch (e) {
      fill(levelsBox, notice("error", errorText(e)));
    }
  }

  function drawChart(moves) {
    const wid = form.warehouse();
    const mine = moves.filter((m) => m.warehouse_id === wid).reverse();
    if (mine.length === 0) {
      fill(chartBox, h("p", { class: "empty" }, `No movements in ${warehouseName(wid)} yet.`));
      return;
    }
    const points = [{ at: mine[0].created_at, value: mine[0].balance_before }, ...mine.map((m) => ({ at: m.created_at, value: m.balance_after }))];
    fill(chartBox, stepChart(points, `On hand of ${p.name} in ${warehouseName(wid)}: ${num(points[points.length - 1].value)} now`),
      h("p", { class: "hint" }, `${warehouseName(wid)}, last ${num(mine.length)} movements`));
  }
  form.onWarehouse(() => load());
  await load();
  if (params.get("scan")) form.focus();
  // Only this product's movements concern its page. Reloading never touches the form's
  // controls (only the tables, the chart and the basis line), so it need not wait for the
  // user to leave the form: the "it is now …" warning shows while they are in it.
  return { refresh: load, concerns: (m) => m.product_id === p.id };
}

/** The journal's kinds in a shop person's words. */
const KIND_WORDS = {
  in: "In", out: "Out", adjustment: "Adjustment", count: "Count", transfer_out: "Transfer out",
  transfer_in: "Transfer in", receive: "Received", reserve: "Reserved", release: "Reservation released",
  commit: "Shipped (reservation)", damage: "Damaged", write_off: "Written off", buffer: "Buffer",
};

function signed(n) {
  return n > 0 ? `+${num(n)}` : num(n);
}

function movementForm(p, params, shown, expected, reload) {
  const ws = session.warehouses;
  const first = params.get("warehouse") || (ws[0] && ws[0].id) || "";
  const wh = select(warehouseOptions(), first, { name: "warehouse_id" });
  const type = select([["in", "Stock in (received)"], ["out", "Stock out (sold, used)"], ["adjustment", "Adjustment (+ or −)"], ["transfer", "Transfer to another warehouse"]], "in", { name: "movement_type" });
  const qty = h("input", { type: "number", name: "quantity", step: "1", inputmode: "numeric", required: true, autocomplete: "off" });
  const to = select(warehouseOptions(), "", { name: "to_warehouse_id" });
  const transit = h("input", { type: "checkbox", name: "in_transit", checked: true });
  const reason = h("input", { type: "text", name: "reason", maxlength: "200", autocomplete: "off" });
  const notes = h("textarea", { name: "notes", maxlength: "4000", rows: "2" });
  const basis = h("p", { class: "basis", "aria-live": "polite" });
  const msg = h("div", { class: "form-msg" });
  const toField = field("To warehouse", to);
  const transitField = h("div", { class: "field" }, h("label", {}, transit, " In transit (receive it at the target later)"));
  const submit = h("button", { type: "submit" }, "Record movement");
  const form = h("form", { class: "movement", novalidate: true, "aria-labelledby": "move-h" },
    field("Warehouse", wh), field("Movement", type),
    field("Quantity", qty, "Whole number; an adjustment may be negative."),
    toField, transitField, field("Reason", reason), field("Notes", notes), basis, submit, msg);
  const section = h("section", { "aria-labelledby": "move-h" }, h("h2", { id: "move-h" }, "Record a movement"), session.canWrite ? form : h("p", { class: "empty" }, "This token may only read stock."));

  let drawn = "";
  const sync = () => {
    const transfer = type.value === "transfer";
    toField.hidden = !transfer;
    transitField.hidden = !transfer;
    qty.min = type.value === "adjustment" ? "" : "1";
    const w = wh.value;
    const base = expected.get(w) ?? 0;
    const now = shown.get(w) ?? 0;
    // Redrawn only when it changes: a redraw would take the focus off its button.
    const key = JSON.stringify([w, base, now]);
    if (key === drawn) return;
    drawn = key;
    fill(basis, `On hand in ${warehouseName(w)} when you started: `, h("strong", {}, num(base)), ".");
    if (now !== base) {
      basis.append(" ", h("span", { class: "warn" }, `It is now ${num(now)}: someone else recorded a change. Check the shelf; saving will be refused until you use the new quantity.`), " ",
        h("button", { type: "button", class: "small", onclick: () => { expected.set(w, now); sync(); } }, "Use the new quantity"));
    }
  };
  let warehouseListener = () => {};
  wh.addEventListener("change", () => { sync(); warehouseListener(); });
  type.addEventListener("change", sync);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(msg);
    const n = Number(qty.value);
    if (qty.value.trim() === "" || !Number.isInteger(n) || n === 0 || (type.value !== "adjustment" && n < 0)) {
      fill(msg, notice("error", type.value === "adjustment" ? "Enter a whole number other than 0." : "Enter a whole number greater than 0."));
      qty.focus();
      return;
    }
    const w = wh.value;
    const body = { product_id: p.id, warehouse_id: w, movement_type: type.value, quantity: n, expected_on_hand: expected.get(w) ?? 0 };
    if (reason.value.trim()) body.reason = reason.value.trim();
    if (notes.value.trim()) body.notes = notes.value.trim();
    if (type.value === "transfer") {
      body.to_warehouse_id = to.value;
      body.in_transit = transit.checked;
    }
    submit.disabled = true;
    try {
      const res = (await api("/api/inventory/movements", { method: "POST", body, idempotencyKey: newKey() })).data;
      const leg = res.legs ? res.legs[0] : res;
      expected.set(w, leg.balance_after);
      if (res.legs && res.legs[1]) expected.set(res.legs[1].warehouse_id, res.legs[1].balance_after);
      fill(msg, notice("ok", `Recorded: on hand in ${warehouseName(w)} went from ${num(leg.balance_before)} to ${num(leg.balance_after)}.`,
        res.transfer_id ? ` Transfer ${res.transfer_id} is ${res.status === "in_transit" ? "in transit" : "received"}.` : ""));
      qty.value = "";
      reason.value = "";
      notes.value = "";
    } catch (err) {
      const conflict = err instanceof ApiError && err.code === "quantity_mismatch";
      fill(msg, notice("error", conflict ? "Not saved: the quantity changed since you looked. " : "Not saved: ", errorText(err),
        conflict ? " The levels above now show the current quantity; check the shelf, then choose “Use the new quantity” and save again." : ""));
    } finally {
      submit.disabled = false;
    }
    reload();
  });
  sync();
  return {
    section,
    update: sync,
    warehouse: () => wh.value,
    /** Preselects the warehouse the product is in (the form opens on the first visible one). */
    choose: (id) => {
      if (session.warehouses.some((w) => w.id === id)) wh.value = id;
    },
    focus: () => qty.focus(),
    onWarehouse: (fn) => { warehouseListener = fn; },
  };
}

// ---- counts: many lines as one bulk count, all or nothing ----

/** The product a typed code names: its id, SKU or barcode; null when none. */
export async function findProduct(code) {
  const c = code.trim();
  if (!c) return null;
  for (const key of ["barcode", "sku"]) {
    const found = (await api(`/api/products${qs({ [key]: c, limit: 1 })}`)).data;
    if (found.length > 0) return found[0];
  }
  try {
    return (await api(`/api/products/${enc(c)}`)).data;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 422)) return null;
    throw e;
  }
}

export function counts(main) {
  if (!session.canWrite) {
    fill(main, h("h1", {}, "Shelf count"), h("p", { class: "empty" }, "This token may only read stock: counting needs a token with inventory:write."));
    return {};
  }
  const wh = select(warehouseOptions(), (session.warehouses[0] || {}).id, { name: "warehouse_id" });
  const linesBody = h("tbody");
  const msg = h("div", { class: "form-msg" });
  const lines = [];
  const addLine = (focus) => {
    const n = lines.length + 1;
    const code = h("input", { type: "text", autocomplete: "off", "aria-label": `Line ${n}: product (SKU, barcode or id)`, class: "code" });
    const qty = h("input", { type: "number", step: "1", inputmode: "numeric", "aria-label": `Line ${n}: counted quantity`, class: "small" });
    const err = h("span", { class: "line-error", role: "alert" });
    const tr = h("tr", {}, h("td", { "data-label": "Line" }, String(n)), h("td", { "data-label": "Product" }, code), h("td", { "data-label": "Counted" }, qty), h("td", { "data-label": "Result" }, err));
    const line = { code, qty, err, tr };
    // A scanner types the code and Enter: Enter moves on (code → count → next line's code)
    // instead of sending a half-typed count; "Send count" sends it.
    code.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        qty.focus();
      }
    });
    qty.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        const next = lines[lines.indexOf(line) + 1];
        if (next) next.code.focus();
        else addLine(true);
      }
    });
    lines.push(line);
    linesBody.append(tr);
    if (focus) code.focus();
    return line;
  };
  for (let i = 0; i < 3; i += 1) addLine(false);
  const reason = h("input", { type: "text", name: "reason", value: "shelf count", maxlength: "200" });
  const submit = h("button", { type: "submit" }, "Send count");
  const form = h("form", { class: "count", novalidate: true },
    field("Warehouse", wh),
    h("div", { class: "table-wrap" }, h("table", { class: "lines" },
      h("caption", {}, "Counted lines (empty lines are skipped)"),
      h("thead", {}, h("tr", {}, ["Line", "Product", "Counted", "Result"].map((c) => h("th", { scope: "col" }, c)))),
      linesBody)),
    h("p", {}, h("button", { type: "button", class: "secondary", onclick: () => addLine(true) }, "Add a line")),
    field("Reason", reason), submit, msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(msg);
    const used = lines.filter((l) => l.code.value.trim() || l.qty.value.trim());
    for (const l of lines) l.err.textContent = "";
    if (used.length === 0) {
      fill(msg, notice("error", "Fill in at least one line."));
      return;
    }
    submit.disabled = true;
    try {
      let bad = 0;
      const items = [];
      for (const l of used) {
        const p = await findProduct(l.code.value);
        const q = Number(l.qty.value);
        if (!p) {
          l.err.textContent = `No product has the code “${l.code.value.trim()}”.`;
          bad += 1;
        } else if (l.qty.value.trim() === "" || !Number.isInteger(q)) {
          l.err.textContent = "Enter the counted quantity as a whole number.";
          bad += 1;
        } else {
          l.err.textContent = p.name;
          items.push({ product_id: p.id, warehouse_id: wh.value, actual_quantity: q, reason: reason.value.trim() || undefined, line: l });
        }
      }
      if (bad > 0) {
        fill(msg, notice("error", `Nothing was saved: ${bad} ${bad === 1 ? "line needs" : "lines need"} fixing.`));
        return;
      }
      try {
        const res = (await api("/api/inventory/adjustments", { method: "POST", idempotencyKey: newKey(),
          body: { adjustments: items.map(({ line, ...rest }) => rest) } })).data;
        res.adjustments.forEach((a, i) => {
          items[i].line.err.textContent = `${num(a.quantity_before)} → ${num(a.quantity_after)} (${signed(a.adjustment)})`;
        });
        fill(msg, notice("ok", `Count saved: ${num(res.adjustments_processed)} lines, ${num(res.total_adjustments)} changed stock.`));
      } catch (err) {
        const line = lineOf(err, items);
        if (line) line.err.textContent = errorText(err);
        fill(msg, notice("error", "Nothing was saved: ", errorText(err)));
      }
    } catch (err) {
      fill(msg, notice("error", errorText(err)));
    } finally {
      submit.disabled = false;
    }
  });
  fill(main, h("h1", {}, "Shelf count"),
    h("p", { class: "hint" }, "Count a shelf and send every line at once: the count is saved whole, or not at all."), form);
  return {};
}

/** The count line an error is about: the line its detail names, or the product it names. */
function lineOf(err, items) {
  const text = errorText(err);
  // `adjustments[i].field` (a field check) or `item i: …` (the ledger's refusal), 0-based.
  const at = /adjustments\[(\d+)\]/.exec(text) || /\bitem (\d+):/.exec(text);
  if (at && items[Number(at[1])]) return items[Number(at[1])].line;
  const named = items.find((it) => text.includes(`\`${it.product_id}\``));
  return named ? named.line : null;
}

// ---- transfers in transit ----

const productNames = new Map();
async function productName(id) {
  if (!productNames.has(id)) {
    productNames.set(id, api(`/api/products/${enc(id)}`).then((r) => r.data.name, () => id));
  }
  return productNames.get(id);
}

export function transfers(main) {
  const box = h("div");
  const msg = h("div", { class: "form-msg" });
  async function load() {
    try {
      const page = await api("/api/inventory/transfers?status=in_transit&limit=500");
      const rows = page.data;
      const names = await Promise.all(rows.map((t) => productName(t.product_id)));
      rows.forEach((t, i) => { t.product_name = names[i]; });
      fill(box, table("Transfers in transit, newest first", [
        { label: "Sent", cell: (t) => time(t.created_at) },
        { label: "Product", cell: (t) => productLink({ id: t.product_id, name: t.product_name }) },
        { label: "From", cell: (t) => warehouseName(t.from_warehouse_id) },
        { label: "To", cell: (t) => warehouseName(t.to_warehouse_id) },
        { label: "Quantity", num: true, cell: (t) => num(t.quantity) },
        { label: "Action", cell: (t) => receiveButton(t) },
      ], rows, "Nothing is in transit."), page.meta.hasMore ? h("p", { class: "hint" }, "More transfers may be in transit than this list shows.") : null);
    } catch (e) {
      fill(box, notice("error", errorText(e)));
    }
  }
  function receiveButton(t) {
    const mayReceive = session.canWrite && (!session.restrictedTo || session.restrictedTo.includes(t.to_warehouse_id));
    if (!mayReceive) return "—";
    return h("button", { type: "button", class: "small", "aria-label": `Receive ${num(t.quantity)} of ${t.product_name} at ${warehouseName(t.to_warehouse_id)}`,
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          const res = (await api(`/api/inventory/transfers/${enc(t.transfer_id)}/receive`, { method: "POST", idempotencyKey: newKey() })).data;
          const leg = res.legs.find((l) => l.warehouse_id === t.to_warehouse_id && l.movement_type === "in") || res.legs[res.legs.length - 1];
          fill(msg, notice("ok", `Received ${num(t.quantity)} of ${t.product_name} at ${warehouseName(t.to_warehouse_id)}`,
            leg ? `: on hand ${num(leg.balance_before)} → ${num(leg.balance_after)}.` : "."));
        } catch (err) {
          fill(msg, notice("error", errorText(err)));
        }
        load();
      } }, "Receive");
  }
  fill(main, h("h1", {}, "Transfers in transit"),
    h("p", { class: "hint" }, "Goods sent between warehouses that have not been received yet. Start a transfer from a product's page."), msg, box);
  load();
  return { refresh: load };
}

// ---- reservations ----

export function reservations(main) {
  const box = h("div");
  const msg = h("div", { class: "form-msg" });
  async function load() {
    try {
      const page = await api("/api/inventory/reservations?status=active&limit=500");
      const rows = page.data;
      const names = await Promise.all(rows.map((r) => productName(r.product_id)));
      rows.forEach((r, i) => { r.product_name = names[i]; });
      fill(box, table("Active reservations, soonest expiry first", [
        { label: "Product", cell: (r) => productLink({ id: r.product_id, name: r.product_name }) },
        { label: "Warehouse", cell: (r) => warehouseName(r.warehouse_id) },
        { label: "Quantity", num: true, cell: (r) => num(r.quantity) },
        { label: "Reference", cell: (r) => r.reference_id || "—" },
        { label: "Expires", cell: (r) => time(r.expires_at) },
        { label: "Action", cell: (r) => (session.canWrite ? reservationActions(r) : "—") },
      ], rows, "No active reservations."), page.meta.hasMore ? h("p", { class: "hint" }, "More reservations are active than this list shows.") : null);
    } catch (e) {
      fill(box, notice("error", errorText(e)));
    }
  }
  function reservationActions(r) {
    const act = (label, method, path, done) => h("button", { type: "button", class: "small", "aria-label": `${label} reservation of ${num(r.quantity)} ${r.product_name}`,
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api(path, { method, idempotencyKey: newKey() });
          fill(msg, notice("ok", `${done}: ${num(r.quantity)} of ${r.product_name}.`));
        } catch (err) {
          fill(msg, notice("error", errorText(err)));
        }
        load();
      } }, label);
    return h("span", { class: "actions" },
      act("Ship", "POST", `/api/inventory/reservations/${enc(r.id)}/commit`, "Shipped"),
      act("Release", "DELETE", `/api/inventory/reservations/${enc(r.id)}`, "Released"));
  }
  fill(main, h("h1", {}, "Reservations"), h("p", { class: "hint" }, "Stock held for orders: ship it (it leaves stock) or release it (it becomes available again)."), msg, box);
  load();
  return { refresh: load };
}

// ---- analytics ----

export function analytics(main, params) {
  const period = select([["7d", "Last 7 days"], ["30d", "Last 30 days"], ["90d", "Last 90 days"], ["1y", "Last year"]], params.get("period") || "30d", { name: "period" });
  // A credential restricted to several warehouses must name one (API.md); to one, it is implied.
  const allLabel = !session.restrictedTo ? "All warehouses" : session.warehouses.length === 1 ? "All my warehouses" : null;
  const wh = select(warehouseOptions(allLabel), params.get("warehouse") || "", { name: "warehouse" });
  const box = h("div");
  const form = h("form", { class: "filters", "aria-label": "Analytics period" }, field("Period", period), field("Warehouse", wh));
  form.addEventListener("submit", (e) => e.preventDefault());
  const apply = () => {
    history.replaceState(null, "", `#/analytics${qs({ period: period.value, warehouse: wh.value })}`);
    load();
  };
  period.addEventListener("change", apply);
  wh.addEventListener("change", apply);
  async function load() {
    try {
      const a = (await api(`/api/inventory/analytics${qs({ period: period.value, warehouse_id: wh.value })}`)).data;
      const o = a.overview;
      fill(box,
        h("ul", { class: "cards", "aria-label": "Overview" },
          card("Products", num(o.total_products)), card("Stock value", money(o.total_stock_value)),
          card("Low stock", num(o.low_stock_items)), card("Out of stock", num(o.out_of_stock_items))),
        h("section", { "aria-labelledby": "trends-h" }, h("h2", { id: "trends-h" }, "Trends"),
          h("div", { class: "chart-box" }, barChart([
            { label: "Units in", value: a.trends.stock_in, kind: "in" },
            { label: "Units out", value: a.trends.stock_out, kind: "out" },
            { label: "Adjustments", value: a.trends.adjustments, kind: "adj" },
          ], `Units in ${num(a.trends.stock_in)}, units out ${num(a.trends.stock_out)}, ${num(a.trends.adjustments)} adjustments`),
          h("p", { class: "hint" }, `${num(a.trends.movements)} movements in the period.`))),
        h("section", { "aria-labelledby": "movers-h" }, h("h2", { id: "movers-h" }, "Top movers"),
          table("Products with the most movements", [
            { label: "Product", cell: (m) => productLink({ id: m.product_id, name: m.product_name }) },
            { label: "Movements", num: true, cell: (m) => num(m.movement_count) },
            { label: "Quantity moved", num: true, cell: (m) => num(m.total_quantity) },
          ], a.top_movers, "No movements in this period.")),
        h("section", { "aria-labelledby": "alerts-h" }, h("h2", { id: "alerts-h" }, "Low-stock alerts"),
          table("Levels at or below their reorder point", [
            { label: "Product", cell: (m) => productLink({ id: m.product_id, name: m.product_name }) },
            { label: "Warehouse", cell: (m) => m.warehouse },
            { label: "Stock", num: true, cell: (m) => num(m.current_stock) },
            { label: "Reorder point", num: true, cell: (m) => num(m.reorder_point) },
          ], a.low_stock_alerts, "Nothing is low.")));
    } catch (e) {
      fill(box, notice("error", errorText(e)));
    }
  }
  fill(main, h("h1", {}, "Analytics"), form, box);
  load();
  return { refresh: load };
}

function card(label, value) {
  return h("li", { class: "card" }, h("span", { class: "card-label" }, label), h("strong", {}, value));
}

// ---- scan mode ----

export function scan(main) {
  const code = h("input", { type: "text", name: "code", autocomplete: "off", autocapitalize: "off", spellcheck: "false", enterkeyhint: "go" });
  const msg = h("div", { class: "form-msg" });
  const form = h("form", { class: "scan", role: "search", "aria-label": "Scan a barcode" },
    field("Barcode or SKU", code, "Scan with a barcode scanner (it types the code and Enter), or type it."),
    h("button", { type: "submit" }, "Open"), msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const c = code.value.trim();
    if (!c) return;
    fill(msg, notice("info", `Looking up “${c}”…`));
    try {
      const p = await findProduct(c);
      if (!p) {
        fill(msg, notice("error", `Unknown code: no product has the barcode or SKU “${c}”.`));
        code.select();
        return;
      }
      location.hash = `#/product/${enc(p.id)}?scan=1`;
    } catch (err) {
      fill(msg, notice("error", errorText(err)));
    }
  });
  fill(main, h("h1", {}, "Scan"), form);
  code.focus();
  return {};
}
