// Engines: unload one loaded model, or all of them; the page reloads to show the new memory use.
import { $, api, reportError, toast } from "./app.js";

async function unload(body) {
  try {
    const { unloaded } = await api("/api/engines/unload", { method: "POST", body });
    toast(unloaded.length ? `Unloaded ${unloaded.join(", ")}.` : "Nothing was loaded.", "success");
    location.reload();
  } catch (error) {
    reportError(error);
  }
}

$("loaded-table").addEventListener("click", (event) => {
  const button = event.target.closest('button[data-testid="unload"]');
  if (button) unload({ engine: button.dataset.engine, model: button.dataset.model });
});
$("unload-all").addEventListener("click", () => unload({}));
