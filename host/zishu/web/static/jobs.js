// Jobs: every job, newest first, updated live; Cancel, Retry and Clear finished.
import {
  $, ACTIVE, RETRYABLE, STATUS_LABEL, api, jobs, reportError, showInstallButton, showProgress, toast,
} from "./app.js";

const list = $("job-list");
const template = document.getElementById("job-template");
const items = new Map();

function when(job) {
  const stamp = job.finished_at || job.started_at || job.created_at;
  return stamp ? new Date(stamp * 1000).toLocaleString() : "";
}

function item(job) {
  let node = items.get(job.id);
  if (!node) {
    node = template.content.firstElementChild.cloneNode(true);
    node.dataset.jobId = job.id;
    items.set(job.id, node);
  }
  node.dataset.status = job.status;
  $("job-title", node).textContent = job.title || `${job.kind} #${job.id}`;
  const badge = $("job-status", node);
  // A running download waiting out a network outage says so on its badge; its message says why.
  const offline = job.status === "RUNNING" && (job.message || "").startsWith("waiting for the network");
  node.dataset.offline = offline ? "true" : "false";
  badge.textContent = offline ? "Waiting for network" : STATUS_LABEL[job.status] || job.status;
  badge.dataset.status = job.status;
  badge.className = `badge status-${job.status.toLowerCase()}`;
  $("job-when", node).textContent = when(job);
  showProgress($("job-progress", node), $("job-percent", node), job);
  $("job-message", node).textContent = job.message || "";
  $("job-error", node).textContent = job.error || "";
  // a job that failed for want of a catalog resource offers to install it (then Retry)
  const cure = job.status === "FAILED" && job.extra ? job.extra.install : null;
  showInstallButton($("job-install", node), cure || null, "job-install-button");
  const cancel = $("job-cancel", node);
  // An interrupted job may be taken up again by itself at the next start: Cancel stops that too.
  cancel.hidden = !(ACTIVE.has(job.status) || job.status === "INTERRUPTED");
  cancel.disabled = Boolean(job.cancel_requested);
  cancel.textContent = job.cancel_requested ? "Cancelling…" : "Cancel";
  $("job-retry", node).hidden = !RETRYABLE.has(job.status);
  $("job-run-next", node).hidden = job.status !== "PENDING";
  return node;
}

function render(feed) {
  const all = feed.list();
  const known = new Set(all.map((job) => job.id));
  for (const [id, node] of items) {
    if (!known.has(id)) {
      node.remove();
      items.delete(id);
    }
  }
  all.forEach((job, index) => {
    const node = item(job);
    if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
  });
  $("jobs-empty").hidden = all.length > 0;
  $("queue-info").textContent = feed.queue ? `Queue: ${feed.queue}` : "";
}

/** The priority that puts a waiting job before every other waiting job. */
function front() {
  const waiting = jobs.list().filter((job) => job.status === "PENDING");
  return Math.max(0, ...waiting.map((job) => job.priority)) + 1;
}

async function act(id, action) {
  const options = { method: "POST" };
  if (action === "priority") options.body = { priority: front() };
  try {
    const { job } = await api(`/api/jobs/${id}/${action}`, options);
    jobs.put(job);
  } catch (error) {
    reportError(error);
  }
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) act(button.closest("[data-job-id]").dataset.jobId, button.dataset.action);
});

$("clear-finished").addEventListener("click", async () => {
  try {
    const { removed } = await api("/api/jobs/finished", { method: "DELETE" });
    toast(removed === 1 ? "Cleared 1 finished job." : `Cleared ${removed} finished jobs.`, "success");
    await jobs.refresh();
  } catch (error) {
    reportError(error);
  }
});

jobs.subscribe(render);
