// The Install dialog (templates/install_dialog.html, on every page): everything an install pulls, its
// hardware budget against the tiers and this machine, and consent for the plugins it brings. Every
// Install button in the app goes through ``installAfterAsking``: the dialog, then POST /api/installs.
import { $, api, el, formatBytes, formatDownloadSize } from "./app.js";

const RUNS_ON = { gpu: "Runs on this machine's GPU", cpu: "Runs on this machine's CPU" };

/** Fill the Install dialog from /api/catalog/plan and wait for the user's answer: what to send with
 * the request to /api/installs (the plugins the user approved), or null when they cancelled.
 * ``title`` is the dialog's heading ("Install <request>" without one). */
export async function askToInstall(request, title = null) {
  const plan = await api(`/api/catalog/plan?request=${encodeURIComponent(request)}`);
  const dialog = $("install-dialog");
  $("install-title", dialog).textContent = title || `Install ${request}`;
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

/** The Install dialog for ``request`` (``owner/name[@version]``), then the install: its job, or null
 * when the user cancelled. An error (the plan's, the install's) is thrown for the caller to report. */
export async function installAfterAsking(request, title = null) {
  const answer = await askToInstall(request, title);
  if (!answer) return null;
  const { job } = await api("/api/installs", { method: "POST", body: { request, ...answer } });
  return job;
}
