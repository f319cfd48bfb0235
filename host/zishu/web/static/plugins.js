// Plugins: enable or disable a plugin; the change applies when Zishu starts again.
import { $, api, reportError, toast } from "./app.js";

$("plugin-table").addEventListener("click", async (event) => {
  const button = event.target.closest('button[data-testid="plugin-toggle"]');
  if (!button) return;
  const { name, action } = button.dataset;
  button.disabled = true;
  try {
    await api(`/api/plugins/${encodeURIComponent(name)}/${action}`, { method: "POST" });
    const next = action === "disable" ? "enable" : "disable";
    button.dataset.action = next;
    button.textContent = next === "enable" ? "Enable" : "Disable";
    $("restart-notice").hidden = false;
    toast(`${name} will be ${action}d when you restart Zishu.`, "success");
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});
