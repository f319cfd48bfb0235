// The Library's "Wanted models": GET /api/model-usage/ranking every few seconds (poll.js), one row a
// model with its queued, served and unserved jobs, the nodes holding it and an ETA, and Install (the
// shared Install dialog, then the install) for a model this machine lacks. Its own script, so a
// ranking that fails (an error status, a timeout, bad JSON) leaves the rest of the Library alone: the
// section says quietly that the ranking is unavailable and shows it again on the next good answer.
import { $, ACTIVE, STATUS_LABEL, el, idPath, jobs, percentOf, reportError, toast } from "./app.js";
import { installAfterAsking } from "./install_dialog.js";
import { poll } from "./poll.js";

const section = $("wanted-models");
const table = $("wanted-table", section);
const note = $("wanted-unavailable", section);
const installing = new Map(); // model -> the id of its install job, started from this section
let last = null; // the last good answer, its rows drawn again when an install's state changes

const count = (n) => (Number.isFinite(Number(n)) ? String(Math.max(0, Math.trunc(Number(n)))) : "0");

/** Seconds until a waiting job is likely served: "12 s", "4 min", "1 h 5 min"; "—" when unknown. */
export function formatEta(seconds) {
  const s = Number(seconds);
  if (seconds === null || seconds === undefined || !Number.isFinite(s) || s < 0) return "—";
  if (s < 1) return "< 1 s";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  const minutes = Math.round((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${minutes ? ` ${minutes} min` : ""}`;
}

function installJob(model) {
  const id = installing.get(model);
  return id === undefined ? null : jobs.byId.get(id) || null;
}

function action(m) {
  if (m.installed_here) return el("span", { class: "badge ok", "data-testid": "wanted-installed" }, "Installed here");
  const job = installJob(m.model);
  if (job && ACTIVE.has(job.status)) {
    const pct = percentOf(job);
    return el("span", { class: "badge status-running", "data-testid": "wanted-installing" },
      `${STATUS_LABEL[job.status]}${pct === null ? "" : ` ${pct} %`}`);
  }
  if (job && job.status === "SUCCESS") return el("span", { class: "badge ok", "data-testid": "wanted-installed" }, "Installed here");
  return el("button", { type: "button", class: "primary", "data-action": "install", "data-testid": "wanted-install",
    dataset: { model: m.model } }, job ? "Try again" : "Install");
}

function row(m) {
  const nodes = Array.isArray(m.nodes) ? m.nodes.map(String) : [];
  const unserved = Number(count(m.unserved));
  return el("tr", { "data-testid": "wanted-model", dataset: { model: m.model } },
    el("td", {}, el("a", { class: "mono", href: `/resources/${idPath(m.model)}` }, m.model)),
    el("td", { class: "num", "data-testid": "wanted-queued" }, count(m.queued)),
    el("td", { class: "num", "data-testid": "wanted-served" }, `${count(m.served_hour)} / ${count(m.served_day)}`),
    el("td", { class: "num", "data-testid": "wanted-unserved" },
      unserved ? el("span", { class: "badge warn", title: "No node has this model" }, String(unserved)) : "0"),
    el("td", { "data-testid": "wanted-nodes", title: nodes.join(", ") },
      nodes.length ? `${nodes.length} node${nodes.length === 1 ? "" : "s"}` : el("span", { class: "muted" }, "none")),
    el("td", { class: "num", "data-testid": "wanted-eta" }, formatEta(m.eta_seconds)),
    el("td", { class: "actions" }, action(m)));
}

function drawRows() {
  const models = last.models.filter((m) => m && typeof m.model === "string" && m.model);
  table.querySelector("tbody").replaceChildren(...models.map(row));
  table.hidden = models.length === 0;
  $("wanted-empty", section).hidden = models.length > 0;
}

function draw(data) {
  const same = last && JSON.stringify(last.models) === JSON.stringify(data.models);
  last = data;
  if (!same) drawRows(); // unchanged rows stay as they are (focus, a hovered button)
  table.classList.remove("stale");
  note.hidden = true;
  const when = new Date(data.updated);
  $("wanted-updated", section).textContent = Number.isNaN(when.getTime()) ? "" : `updated ${when.toLocaleTimeString()}`;
}

function unavailable(error) {
  note.textContent = `The ranking is unavailable right now (${error.message}); trying again in a few seconds.`;
  note.hidden = false;
  table.classList.add("stale"); // the last good ranking stays, dimmed
}

const ranking = poll("/api/model-usage/ranking", {
  every: 5000,
  timeout: 4000,
  check: (data) => Array.isArray(data.models),
  update: draw,
  failed: unavailable,
});

async function install(button) {
  const model = button.dataset.model;
  button.disabled = true;
  try {
    const job = await installAfterAsking(model);
    if (!job) {
      button.disabled = false;
      return;
    }
    installing.set(model, job.id);
    jobs.put(job);
    toast(`Installing ${model}: this machine will serve it once it is done.`, "success");
  } catch (error) {
    button.disabled = false;
    reportError(error);
  }
}

table.addEventListener("click", (event) => {
  const button = event.target.closest('button[data-action="install"]');
  if (button) install(button);
});

// an install started here: redraw its row as it runs; ask for the ranking again when it ends
const ended = new Set();
jobs.subscribe((feed) => {
  if (!installing.size || !last) return;
  for (const [model, id] of installing) {
    const job = feed.byId.get(id);
    if (job && !ACTIVE.has(job.status) && !ended.has(id)) {
      ended.add(id);
      if (job.status === "SUCCESS") {
        toast(`Installed ${model}: reload the Library to see it listed.`, "success");
        ranking.refresh();
      }
      else if (job.status === "FAILED") reportError(new Error(`Installing ${model} failed: ${job.error || job.message || ""}`));
    }
  }
  drawRows();
});
