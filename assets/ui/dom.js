// Small DOM helpers. Elements are built with createElement and textContent only (never
// from HTML strings): data from the API can never become markup, and nothing here needs
// an inline script or style attribute, which the page's CSP (default-src 'self') blocks.

/** Element `tag` with properties/attributes `props` and `children` (strings become text). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idCounter = 0;
/** A fresh element id (labels point at their control by id). */
export function uid(prefix = "f") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled control: `<div class="field"><label for=id>text</label>control</div>`. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = uid();
  const parts = [h("label", { for: control.id }, labelText), control];
  if (hint) {
    const hintEl = h("small", { id: uid("hint"), class: "hint" }, hint);
    control.setAttribute("aria-describedby", hintEl.id);
    parts.push(hintEl);
  }
  return h("div", { class: "field" }, parts);
}

/** A <select> of [value, label] pairs. */
export function select(options, value, props = {}) {
  return h("select", props, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

// Numbers and times in the browser's locale (issue 14, item 5).
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function num(n) {
  return n === null || n === undefined ? "—" : integer.format(n);
}
export function money(n) {
  return n === null || n === undefined ? "—" : decimal.format(n);
}
export function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : when.format(d);
}
export function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${decimal.format(v)} ${units[i]}`;
}

/** A table whose cells carry their column name (the phone layout shows it beside the value). */
export function table(caption, columns, rows, emptyText = "Nothing to show.") {
  if (rows.length === 0) return h("p", { class: "empty" }, emptyText);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : "" }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) =>
        h("td", { "data-label": c.label, class: c.num ? "num" : "" }, h("span", { class: "v" }, c.cell(row)))))))));
}

/** A status line for results and errors (announced to screen readers). */
export function notice(kind, ...text) {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
