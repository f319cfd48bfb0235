// A resource's page: Install, then the install job's live progress until it succeeds or fails.
import { $, ACTIVE, RETRYABLE, STATUS_LABEL, api, jobs, reportError, showProgress } from "./app.js";
import { installAfterAsking } from "./install_dialog.js";

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

async function install() {
  const version = $("install-version").value;
  const request = version && version !== box.dataset.latest ? `${rid}@${version}` : rid;
  button.disabled = true;
  try {
    const job = await installAfterAsking(request, `Install ${$("resource-name").textContent}`);
    if (!job) {
      button.disabled = false;
      return;
    }
    button.classList.remove("attention");
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
