// Settings: save the catalog URL; show this computer's hardware.
import { $, api, el, formatBytes, reportError, toast } from "./app.js";

const form = $("settings-form");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const save = $("save-settings");
  save.disabled = true;
  try {
    const answer = await api("/api/settings", { method: "PUT", body: { catalog_url: form.elements.catalog_url.value } });
    $("catalog-used").textContent = answer.catalog_used;
    toast("Settings saved.", "success");
  } catch (error) {
    reportError(error);
  } finally {
    save.disabled = false;
  }
});

function fact(term, ...value) {
  return el("div", {}, el("dt", {}, term), el("dd", {}, ...value));
}

async function hardware() {
  const target = $("hardware");
  let sys;
  try {
    sys = await api("/api/system");
  } catch (error) {
    target.replaceChildren(fact("Hardware", "unknown"));
    reportError(error);
    return;
  }
  const gpus = sys.gpus && sys.gpus.length
    ? sys.gpus.map((gpu) => el("div", { "data-testid": "gpu" },
      `${gpu.name} — ${formatBytes(gpu.vram_bytes)} VRAM, ${formatBytes(gpu.vram_free_bytes)} free`))
    : [el("span", { class: "muted", "data-testid": "no-gpu" }, "No GPU found")];
  target.replaceChildren(
    fact("System", `${sys.os} · Python ${sys.python}`),
    fact("CPU", `${sys.cpu || "unknown"}${sys.cpu_count ? ` · ${sys.cpu_count} cores` : ""}`),
    fact("Memory", `${formatBytes(sys.ram_bytes)} (${formatBytes(sys.ram_available_bytes)} free)`),
    fact("Disk", `${formatBytes(sys.disk_free_bytes)} free of ${formatBytes(sys.disk_total_bytes)}`),
    fact("GPUs", ...gpus),
  );
}

hardware();
