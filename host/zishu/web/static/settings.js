// Settings: save the catalog URL; the companion's default models per role, their devices, the default
// voice and a turn's time budget; the studio's safe mode, image classifier and prompt-filter word lists;
// the local API (switch, port, key to copy or rotate, origins); show this computer's hardware.
import { $, api, el, formatBytes, reportError, toast } from "./app.js";
import { installAfterAsking } from "./install_dialog.js";

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

const companion = $("companion-settings");
const ROLES = ["llm", "embedding", "asr", "vad"];

function showInstall(select) {
  const chosen = select.selectedOptions[0];
  select.closest(".model-pick").querySelector('[data-action="install"]').hidden =
    !chosen || chosen.dataset.installed !== "false";
}

async function loadChoices() {
  const { choices } = await api("/api/characters/choices");
  for (const role of ROLES) {
    const select = companion.elements[`model_${role}`];
    const wanted = select.dataset.value;
    select.replaceChildren(el("option", { value: "" }, "First installed"),
      ...(choices[role] || []).map((c) => el("option", { value: c.id, dataset: { installed: String(c.installed) } },
        `${c.name} (${c.id})${c.installed ? "" : " — not installed"}`)));
    if (wanted && ![...select.options].some((o) => o.value === wanted)) {
      select.append(el("option", { value: wanted }, `${wanted} (not in the catalog)`));
    }
    select.value = wanted;
    showInstall(select);
  }
  $("settings-voice-ids").replaceChildren(...(choices.voice || []).map((c) => el("option", { value: c.id }, c.name)));
}

companion.addEventListener("change", (event) => {
  if (event.target.matches("select[data-part]")) showInstall(event.target);
});

companion.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action='install']");
  if (!button) return;
  const select = button.closest(".model-pick").querySelector("select[data-part]");
  button.disabled = true;
  try {
    if (await installAfterAsking(select.value)) toast(`Installing ${select.value}: follow it in Jobs.`, "success");
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});

companion.addEventListener("submit", async (event) => {
  event.preventDefault();
  const save = $("save-companion-settings");
  save.disabled = true;
  try {
    const models = {};
    const devices = {};
    for (const role of ROLES) {
      models[role] = companion.elements[`model_${role}`].value;
      devices[role] = companion.elements[`device_${role}`].value;
    }
    const engine = companion.elements.voice_engine.value.trim();
    const voice = companion.elements.voice_id.value.trim();
    if (voice && !engine) throw new Error("Choose the engine that speaks with this voice.");
    const seconds = companion.elements.turn_seconds.value.trim();
    // sent as typed (a number when it reads as one): the server says what is wrong with it
    const turnSeconds = seconds !== "" && !Number.isNaN(Number(seconds)) ? Number(seconds) : seconds;
    await api("/api/settings", { method: "PUT", body: { companion_models: models, companion_devices: devices,
      companion_voice: engine ? { engine, ...(voice ? { voice } : {}) } : {}, companion_turn_seconds: turnSeconds } });
    for (const role of ROLES) companion.elements[`model_${role}`].dataset.value = models[role];
    toast("Companion settings saved.", "success");
  } catch (error) {
    reportError(error);
  } finally {
    save.disabled = false;
  }
});

const safety = $("safety-settings");
const words = $("word-list-form");

async function loadSafety() {
  const state = await api("/api/studio/safety");
  const status = $("image-check-status");
  status.textContent = state.image_check.message;
  status.className = `banner ${state.image_check.installed ? "info" : "warning"}`;
  status.hidden = false;
  const lang = words.elements.lang;
  const chosen = lang.value || "en";
  lang.replaceChildren(...state.languages.map((code) => el("option", { value: code }, code)));
  lang.value = state.languages.includes(chosen) ? chosen : state.languages[0];
  await loadWords();
}

function showWords(list) {
  words.elements.text.value = list.user;
  $("word-list-builtin").textContent = list.builtin;
  $("word-list-count").textContent = `${list.entries.length} entries apply`;
}

async function loadWords() {
  showWords(await api(`/api/studio/filters/${encodeURIComponent(words.elements.lang.value)}`));
}

safety.addEventListener("submit", async (event) => {
  event.preventDefault();
  const save = $("save-safety-settings");
  save.disabled = true;
  try {
    const model = safety.elements.image_check_model.value.trim();
    const threshold = safety.elements.image_check_threshold.value;
    await api("/api/settings", { method: "PUT", body: { studio_safe_mode: safety.elements.safe_mode.checked,
      studio_image_check: { ...(model ? { model } : {}), ...(threshold ? { threshold: Number(threshold) } : {}) } } });
    await loadSafety();
    toast("Safety settings saved.", "success");
  } catch (error) {
    reportError(error);
  } finally {
    save.disabled = false;
  }
});

words.elements.lang.addEventListener("change", () => loadWords().catch(reportError));

words.addEventListener("submit", async (event) => {
  event.preventDefault();
  const save = $("save-word-list");
  save.disabled = true;
  try {
    const lang = words.elements.lang.value;
    showWords(await api(`/api/studio/filters/${encodeURIComponent(lang)}`,
      { method: "PUT", body: { text: words.elements.text.value } }));
    toast(`Word list ${lang} saved.`, "success");
  } catch (error) {
    reportError(error);
  } finally {
    save.disabled = false;
  }
});

const localApi = $("local-api-settings");

function showLocalApi(state) {
  $("local-api-key").value = state.key;
  $("local-api-key-kept-in").textContent = state.key_kept_in;
  let status = state.listening ? `Listening on ${state.listening}` : "Not listening";
  if (state.error) status += ` — ${state.error}`;
  if (state.restart_needed) status += " — restart Zishu to apply the port and the switch.";
  $("local-api-status").textContent = status;
}

localApi.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  button.disabled = true;
  try {
    if (button.dataset.action === "copy") {
      await navigator.clipboard.writeText($("local-api-key").value);
      toast("API key copied.", "success");
    } else if (button.dataset.action === "rotate") {
      showLocalApi(await api("/api/local-api/key", { method: "POST" }));
      toast("New API key: the old one no longer works.", "success");
    }
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});

localApi.addEventListener("submit", async (event) => {
  event.preventDefault();
  const save = $("save-local-api");
  save.disabled = true;
  try {
    const port = localApi.elements.port.value.trim();
    await api("/api/settings", { method: "PUT", body: {
      local_api_enabled: localApi.elements.enabled.checked,
      // sent as typed (a number when it reads as one): the server says what is wrong with it
      local_api_port: port !== "" && !Number.isNaN(Number(port)) ? Number(port) : port,
      local_api_origins: localApi.elements.origins.value.split("\n").map((o) => o.trim()).filter(Boolean),
    } });
    showLocalApi(await api("/api/local-api"));
    toast("Local API settings saved.", "success");
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
loadChoices().catch(reportError);
loadSafety().catch(reportError);
api("/api/local-api").then(showLocalApi).catch(reportError);
