// Two small SVG charts (no library): a step line of on-hand over time and a bar chart.
// Colours come from app.css classes, sizes from the viewBox (no style attributes: CSP).

import { num, time } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 200;
const PAD = { left: 48, right: 12, top: 24, bottom: 28 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function frame(label) {
  return s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label });
}

/** Step line of `points` [{at: ISO time, value}] (oldest first), one step per movement:
 * evenly spaced, so a busy minute is as readable as a quiet month (the ends are dated). */
export function stepChart(points, label) {
  const svg = frame(label);
  if (points.length === 0) return svg;
  const times = points.map((_, i) => i);
  const values = points.map((p) => p.value);
  const t0 = 0;
  const t1 = Math.max(1, points.length - 1);
  const v0 = Math.min(0, ...values);
  const v1 = Math.max(1, ...values);
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - ((v - v0) / (v1 - v0)) * (HEIGHT - PAD.top - PAD.bottom);
  let d = `M ${x(times[0])} ${y(values[0])}`;
  for (let i = 1; i < points.length; i += 1) d += ` H ${x(times[i])} V ${y(values[i])}`;
  svg.append(
    s("line", { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), class: "axis" }),
    s("path", { d, class: "line" }),
    s("text", { x: PAD.left - 6, y: y(v1) + 4, class: "tick", "text-anchor": "end" }, num(v1)),
    s("text", { x: PAD.left - 6, y: y(v0) + 4, class: "tick", "text-anchor": "end" }, num(v0)),
    s("text", { x: PAD.left, y: HEIGHT - 8, class: "tick" }, time(points[0].at)),
    s("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, class: "tick", "text-anchor": "end" }, time(points[points.length - 1].at)),
  );
  for (let i = 0; i < points.length; i += 1) {
    svg.append(s("circle", { cx: x(times[i]), cy: y(values[i]), r: 3, class: "dot" }, s("title", {}, `${time(points[i].at)}: ${num(values[i])}`)));
  }
  return svg;
}

/** Bars of `items` [{label, value, kind}] (kind picks the colour class). */
export function barChart(items, label) {
  const svg = frame(label);
  const max = Math.max(1, ...items.map((i) => Math.abs(i.value)));
  const slot = (WIDTH - PAD.left - PAD.right) / Math.max(1, items.length);
  const base = HEIGHT - PAD.bottom;
  items.forEach((item, i) => {
    const hgt = (Math.abs(item.value) / max) * (HEIGHT - PAD.top - PAD.bottom);
    const x0 = PAD.left + i * slot + slot * 0.2;
    svg.append(
      s("rect", { x: x0, y: base - hgt, width: slot * 0.6, height: Math.max(hgt, 1), class: `bar ${item.kind || ""}` }, s("title", {}, `${item.label}: ${num(item.value)}`)),
      s("text", { x: x0 + slot * 0.3, y: HEIGHT - 8, class: "tick", "text-anchor": "middle" }, item.label),
      s("text", { x: x0 + slot * 0.3, y: base - hgt - 4, class: "tick", "text-anchor": "middle" }, num(item.value)),
    );
  });
  svg.append(s("line", { x1: PAD.left, y1: base, x2: WIDTH - PAD.right, y2: base, class: "axis" }));
  return svg;
}
