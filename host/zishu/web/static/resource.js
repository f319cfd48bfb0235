// A resource's page: Install, then the install job's live progress until it succeeds or fails.
import {
  $, ACTIVE, RETRYABLE, STATUS_LABEL, api, el, formatBytes, formatDownloadSize, jobs, reportError, showProgress,
} from "./app.js";

const box = $("install-box");
const rid = box.dataset.id;
const button = $("install-button");
let watching = null;

function isForThis(job) {
  const wanted = (job.params && job.params.request) || "";
  return job.kind === "install" && (wanted === rid || wanted.startsWith(`${rid}@`));
}

function markInstalled(job) {
  const note = $("installed-versions");
  const versions = new Set(note.querySelector("span").textContent.split(", ").filter(Boolean));
  for (const done of job.result || []) if (done.id === rid) versions.add(done.version);
  note.querySelector("span").textContent = [...versions].sort().join(", ");
  note.classList.toggle("hidden", versions.size === 0);
}

function render(job) {
  $("install-progress").hidden = false;
  $("install-status").textContent = STATUS_LABEL[job.status] || job.status;
  showProgress($("install-progress-bar"), $("install-percent"), job);
  $("install-message").textContent = job.message || "";
  $("install-done").hidden = job.status !== "SUCCESS";
  $("install-error").hidden = !RETRYABLE.has(job.status);
  $("install-error-message").textContent = job.error || job.message || STATUS_LABEL[job.status] || "";
  if (button) button.disabled = ACTIVE.has(job.status);
  box.dataset.status = job.status;
  if (job.status === "SUCCESS") markInstalled(job);
}

function watch(job) {
  watching = job.id;
  jobs.put(job);
  render(jobs.byId.get(job.id) || job);
}

const RUNS_ON = { gpu: "Runs on this machine's GPU", cpu: "Runs on this machine's CPU" };

/** Fill the Install dialog from /api/catalog/plan and wait for the user's answer. */
async function askToInstall(request) {
  const plan = await api(`/api/catalog/plan?request=${encodeURIComponent(request)}`);
  const dialog = $("install-dialog");
  $("install-steps", dialog).querySelector("tbody").replaceChildren(...plan.steps.map((s) => el("tr", {},
    el("td", {}, s.name, " ", el("span", { class: "muted mono" }, `${s.id}@${s.version}`)), el("td", {}, s.kind),
    el("td", {}, s.installed ? "installed" : formatDownloadSize(s.size, s.exact)))));
  $("install-download", dialog).textContent = formatDownloadSize(plan.download, plan.download_exact);
  const b = plan.budget;
  $("budget-disk", dialog).textContent = formatDownloadSize(b.disk, b.disk_exact);
  $("budget-ram", dialog).textContent = formatBytes(b.ram);
  $("budget-vram", dialog).textContent = formatBytes(b.vram);
  $("budget-estimated", dialog).hidden = !b.estimated;
  $("install-tiers", dialog).querySelector("tbody").replaceChildren(...b.tiers.map((t) => el("tr",
    { "data-tier": t.name }, el("td", {}, t.title), el("td", {}, formatBytes(t.ram)),
    el("td", {}, t.vram ? formatBytes(t.vram) : "no GPU"), el("td", {}, formatBytes(t.disk)),
    el("td", { class: "fits" }, t.fits ? "✓ yes" : "✗ no"))));
  const m = plan.machine;
  $("budget-here", dialog).textContent = `${RUNS_ON[m.runs_on] || "Does not fit this machine"} (RAM ${
    formatBytes(m.ram)}, ${m.vram ? `VRAM ${formatBytes(m.vram)}` : "no GPU"}, ${formatBytes(m.disk_free)} free)`;
  $("budget-short", dialog).replaceChildren(...m.short.map((s) => el("li", {}, s)));
  $("plugin-consent", dialog).hidden = plan.plugins.length === 0;
  $("plugin-list", dialog).replaceChildren(...plan.plugins.map((p) => el("li", { "data-testid": "plugin" },
    el("strong", {}, p.id), ` ${p.version}: Python distribution ${p.distribution}, entry point "${p.entry_point}"`
    + ` · ${p.license} · by ${p.maintainers.join(", ")}`)));
  $("install-confirm", dialog).textContent = plan.plugins.length ? "Approve and install" : "Install";
  dialog.returnValue = "";
  dialog.showModal();
  const ok = await new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
  return ok ? { approve_plugins: plan.plugins.map((p) => p.id) } : null;
}

async function install() {
  const version = $("install-version").value;
  const request = version && version !== box.dataset.latest ? `${rid}@${version}` : rid;
  button.disabled = true;
  try {
    const answer = await askToInstall(request);
    if (!answer) {
      button.disabled = false;
      return;
    }
    button.classList.remove("attention");
    const { job } = await api("/api/installs", { method: "POST", body: { request, ...answer } });
    watch(job);
  } catch (error) {
    button.disabled = false;
    reportError(error);
  }
}

async function retry() {
  try {
    const { job } = await api(`/api/jobs/${watching}/retry`, { method: "POST" });
    watch(job);
  } catch (error) {
    reportError(error);
  }
}

jobs.subscribe((feed) => {
  if (watching === null) {
    const running = feed.list().find((job) => isForThis(job) && ACTIVE.has(job.status));
    if (running) watching = running.id;
  }
  const job = feed.byId.get(watching);
  if (job) render(job);
});
if (button) button.addEventListener("click", install);
$("install-retry").addEventListener("click", retry);
