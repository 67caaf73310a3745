// Admin pages: backups (list, take one) and outbound sinks (position, lag, state,
// pause/resume). `/admin/sinks` may not exist in this build: a 404 shows "not available".

import { api, ApiError, newKey } from "./api.js";
import { bytes, fill, h, notice, num, table, time } from "./dom.js";
import { errorText } from "./pages.js";

const enc = encodeURIComponent;

export function backups(main) {
  const box = h("div");
  const msg = h("div", { class: "form-msg" });
  const take = h("button", { type: "button" }, "Take a backup now");
  take.addEventListener("click", async () => {
    take.disabled = true;
    fill(msg, notice("info", "Taking a backup…"));
    try {
      const b = (await api("/admin/backup", { method: "POST", idempotencyKey: newKey() })).data;
      fill(msg, notice("ok", `Backup written: ${b.file.split("/").pop()} (${bytes(b.bytes)}, up to movement ${num(b.seq)}).`));
    } catch (e) {
      fill(msg, notice("error", errorText(e)));
    } finally {
      take.disabled = false;
    }
    load();
  });
  async function load() {
    try {
      const files = (await api("/admin/backups")).data;
      fill(box, table("Snapshots in the backup directory, newest first", [
        { label: "File", cell: (f) => h("code", {}, f.name) },
        { label: "Size", num: true, cell: (f) => bytes(f.bytes) },
        { label: "Written", cell: (f) => time(f.modified_at) },
      ], files, "No backups yet."));
    } catch (e) {
      fill(box, notice("error", errorText(e)));
    }
  }
  fill(main, h("h1", {}, "Backups"),
    h("p", { class: "hint" }, "A backup is a consistent copy of the data file, written while the shop keeps working, into the server's backup directory. Copy one elsewhere with ",
      h("code", {}, "stockd backup --out FILE"), "; restore one with ", h("code", {}, "stockd serve --data FILE"), "."),
    h("p", {}, take), msg, box);
  load();
  return {};
}

export function sinks(main) {
  const box = h("div");
  const msg = h("div", { class: "form-msg" });
  async function load() {
    let rows;
    try {
      rows = (await api("/admin/sinks")).data;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        fill(box, notice("info", "Outbound sinks (webhooks, NATS) are not available in this version of stockd."));
        return;
      }
      fill(box, notice("error", errorText(e)));
      return;
    }
    fill(box, table("Outbound sinks", [
      { label: "Sink", cell: (s) => [h("strong", {}, s.id), h("small", { class: "sku" }, `${s.kind} → ${s.target}`)] },
      { label: "State", cell: (s) => h("span", { class: `badge ${s.state === "ok" ? "ok" : s.state === "paused" ? "low" : "out"}` }, s.state) },
      { label: "Position", num: true, cell: (s) => num(s.position) },
      { label: "Lag", num: true, cell: (s) => num(s.lag) },
      { label: "Attempts", num: true, cell: (s) => num(s.attempts) },
      { label: "Last error", cell: (s) => s.last_error || "—" },
      { label: "Last attempt", cell: (s) => time(s.last_attempt_at) },
      { label: "Action", cell: (s) => toggle(s) },
    ], rows, "No sinks are configured."));
  }
  function toggle(s) {
    const verb = s.state === "paused" ? "resume" : "pause";
    return h("button", { type: "button", class: "small", "aria-label": `${verb === "pause" ? "Pause" : "Resume"} sink ${s.id}`,
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api(`/admin/sinks/${enc(s.id)}/${verb}`, { method: "POST" });
          fill(msg, notice("ok", `Sink ${s.id} ${verb === "pause" ? "paused" : "resumed"}.`));
        } catch (err) {
          fill(msg, notice("error", errorText(err)));
        }
        load();
      } }, verb === "pause" ? "Pause" : "Resume");
  }
  fill(main, h("h1", {}, "Outbound sinks"), h("p", { class: "hint" }, "Webhooks and NATS streams that receive every movement, in order."), msg, box);
  load();
  return { refresh: load };
}
