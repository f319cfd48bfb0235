// The Nodes panel: GET /api/cluster/nodes every few seconds while the tab is visible (poll.js), one
// card a node: its name and id, GPU, free RAM and VRAM, load, models, engines, running jobs and the
// age of its last heartbeat, which ticks every second and turns red ("stale") once it is older than
// the time a node's entry lives in Redis. A failing API leaves the last cards up (their heartbeats
// going stale) with a quiet note, and the next good answer replaces them.
import { $, el, formatBytes } from "./app.js";
import { poll } from "./poll.js";

const list = $("node-list");
const STALE_AFTER = Number(list.dataset.staleAfter) || 6;
const received = new Map(); // node id -> { age: age_seconds when read, at: performance.now() then }

/** "just now", "3 s ago", "2 min ago", "1 h ago". */
export function formatAge(seconds) {
  if (!Number.isFinite(seconds)) return "unknown";
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

function gpuName(gpu) {
  if (!gpu) return null;
  if (typeof gpu === "string") return gpu;
  return gpu.name || null;
}

function fact(label, value, testid) {
  return el("div", {}, el("dt", {}, label), el("dd", { "data-testid": testid }, value));
}

function chips(items, testid, none) {
  const names = Array.isArray(items) ? items.map(String) : [];
  if (!names.length) return el("span", { class: "muted small", "data-testid": testid }, none);
  return el("div", { class: "chip-row", "data-testid": testid }, ...names.map((n) => el("span", { class: "chip mono" }, n)));
}

function runningList(running) {
  const jobs = Array.isArray(running) ? running : [];
  if (!jobs.length) return el("p", { class: "muted small", "data-testid": "node-running" }, "Idle");
  return el("ul", { class: "plain running", "data-testid": "node-running" }, ...jobs.map((r) => {
    const job = r && typeof r === "object" ? r : { job: r };
    return el("li", { "data-testid": "node-job" },
      el("span", { class: "badge status-running" }, job.kind || "job"), " ",
      job.model ? el("span", { class: "mono" }, job.model) : null, " ",
      job.job !== undefined && job.job !== null ? el("span", { class: "muted small mono" }, `#${job.job}`) : null);
  }));
}

function card(node) {
  const gpu = gpuName(node.gpu);
  const load = Number(node.load);
  return el("article", { class: "card node", "data-testid": "node", dataset: { id: node.id } },
    el("header", { class: "row spread" },
      el("div", { class: "card-title", "data-testid": "node-name" }, node.name || node.id),
      el("span", { class: "badge heartbeat", "data-testid": "node-heartbeat", title: node.last_heartbeat || "" })),
    el("p", { class: "muted mono small node-id", "data-testid": "node-id" }, node.id),
    el("dl", { class: "facts" },
      fact("GPU", gpu || "none", "node-gpu"),
      fact("RAM free", formatBytes(node.ram_free), "node-ram"),
      fact("VRAM free", gpu || node.vram_free ? formatBytes(node.vram_free) : "—", "node-vram"),
      fact("Load", Number.isFinite(load) && node.load !== null ? load.toFixed(2) : "—", "node-load")),
    el("h4", {}, "Models"),
    chips(node.models, "node-models", "No models installed"),
    el("h4", {}, "Running"),
    runningList(node.running),
    el("p", { class: "muted small" }, "Engines: ", (Array.isArray(node.engines) && node.engines.length)
      ? node.engines.join(", ") : "none"));
}

/** Every card's heartbeat age, now: fresh in green, past STALE_AFTER red and marked stale. */
function tick() {
  const now = performance.now();
  for (const item of list.querySelectorAll('[data-testid="node"]')) {
    const seen = received.get(item.dataset.id);
    const badge = $("node-heartbeat", item);
    if (!seen || !badge) continue;
    const age = seen.age + (now - seen.at) / 1000;
    const stale = !(age <= STALE_AFTER);
    item.dataset.stale = String(stale);
    badge.className = `badge heartbeat ${stale ? "status-failed" : "ok"}`;
    badge.textContent = stale ? `stale · ${formatAge(age)}` : formatAge(age);
  }
}

const PLACEHOLDER = "redis://:PASSWORD@HOST:6379/0"; // in the empty state's commands until the queue is known

function showQueue(queue) {
  const where = $("nodes-queue");
  if (queue) {
    where.replaceChildren("Queue: ", el("span", { class: "mono", "data-testid": "nodes-queue-url" }, queue));
  } else {
    where.textContent = "This app runs its jobs on this machine only: no Redis queue is set (ZISHU_QUEUE).";
  }
  const url = queue || PLACEHOLDER;
  $("nodes-serve-command").textContent = `ZISHU_QUEUE=${url} zishu serve`;
  $("nodes-join-command").textContent = `zishu worker --join ${url} --secret-file cluster.secret`;
}

function draw(data) {
  const nodes = data.nodes.filter((n) => n && typeof n.id === "string" && n.id);
  const now = performance.now();
  received.clear();
  for (const n of nodes) received.set(n.id, { age: Math.max(0, Number(n.age_seconds) || 0), at: now });
  list.replaceChildren(...nodes.map(card));
  showQueue(data.queue);
  $("nodes-empty").hidden = nodes.length > 0;
  $("nodes-empty-title").textContent = data.queue ? "No worker is connected" : "No cluster yet";
  $("nodes-unavailable").hidden = true;
  tick();
}

function unavailable(error) {
  const note = $("nodes-unavailable");
  note.textContent = `The node list is unavailable right now (${error.message}); trying again in a few seconds.`;
  note.hidden = false;
}

poll("/api/cluster/nodes", {
  every: 3000,
  timeout: 4000,
  check: (data) => Array.isArray(data.nodes),
  update: draw,
  failed: unavailable,
});
setInterval(tick, 1000);
