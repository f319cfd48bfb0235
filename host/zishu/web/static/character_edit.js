// The character form: make a character, or edit one (each save is a new version; Undo goes back).
// Editing a catalog character saves your own copy; undoing that copy's only version returns to the original.
// Every part is here: text, lorebook, emotions, voice, models (each "default" or a pick, installed or from
// the catalog with Install), the avatar (a Live2D model or an uploaded picture) and the image style.
import { $, api, el, idPath, reportError, toast, undoToast } from "./app.js";
import { installAfterAsking } from "./install_dialog.js";

const form = $("character-form");
const greetings = $("greetings");
const lorebook = $("lorebook");
const emotions = $("emotions");
const forkNote = $("fork-note");
let character = JSON.parse(document.getElementById("character-data").textContent);
const picks = [...form.querySelectorAll("select[data-part]")];
let choices = {};

/** Put ``value`` in a pick's select, adding it when the choices do not list it (an id not installed
 * and not in the catalog stays what the character says). */
function setPick(select, value) {
  if (value && ![...select.options].some((o) => o.value === value)) {
    select.append(el("option", { value, dataset: { installed: "unknown" } }, `${value} (not in the catalog)`));
  }
  select.value = value || "";
  showInstall(select);
}

function showInstall(select) {
  const button = select.closest(".model-pick").querySelector('[data-action="install"]');
  const chosen = select.selectedOptions[0];
  button.hidden = !chosen || chosen.dataset.installed !== "false";
}

function fillChoices() {
  for (const select of picks) {
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, select.dataset.empty),
      ...(choices[select.dataset.part] || []).map((c) => el("option", { value: c.id,
        dataset: { installed: String(c.installed) } }, `${c.name} (${c.id})${c.installed ? "" : " — not installed"}`)));
    setPick(select, current);
  }
  $("voice-ids").replaceChildren(...(choices.voice || []).map((c) => el("option", { value: c.id }, c.name)));
}

async function loadChoices() {
  try {
    choices = (await api("/api/characters/choices")).choices;
  } catch (error) {
    reportError(error);
    return;
  }
  const wanted = picks.map((select) => [select, select.value]);
  fillChoices();
  for (const [select, value] of wanted) setPick(select, value);
}

function avatarKind() {
  const checked = form.querySelector('input[name="avatar_kind"]:checked');
  return checked ? checked.value : "";
}

function showAvatarKind() {
  const kind = avatarKind();
  $("live2d-pick").hidden = kind !== "live2d";
  $("picture-pick").hidden = kind !== "image";
}

const TEXT_FIELDS = ["name", "persona", "scenario", "example_dialogue", "post_history_instructions", "creator_notes"];

function removeButton(label) {
  return el("button", { type: "button", class: "danger-ghost", "data-action": "remove", "aria-label": label }, "Remove");
}

function addGreeting(text = "") {
  const area = el("textarea", { rows: "3", "data-testid": "greeting-text", "aria-label": "Greeting" });
  area.value = text;
  greetings.append(el("li", { class: "row greeting", "data-testid": "greeting" }, el("div", { class: "grow" }, area),
    removeButton("Remove this greeting")));
  return area;
}

function addLore(entry = {}) {
  const keys = el("input", { class: "grow", placeholder: "keyword, another keyword", "data-testid": "lore-keys",
    "aria-label": "Keywords (comma-separated)" });
  keys.value = (entry.keys || []).join(", ");
  const priority = el("input", { type: "number", step: "1", class: "lore-priority", "data-testid": "lore-priority",
    "aria-label": "Priority" });
  priority.value = String(entry.priority ?? 0);
  const constant = el("input", { type: "checkbox", "data-testid": "lore-constant" });
  constant.checked = Boolean(entry.constant);
  const content = el("textarea", { rows: "3", "data-testid": "lore-content", "aria-label": "What the character is told" });
  content.value = entry.content || "";
  const row = el("div", { class: "lore-entry stack", "data-testid": "lore-entry" },
    el("div", { class: "row" },
      el("label", { class: "grow" }, "Keywords ", keys),
      el("label", {}, "Priority ", priority),
      el("label", { class: "row" }, constant, "Constant"),
      removeButton("Remove this entry")),
    content);
  row.original = entry; // fields the form does not show (secondary keys, SillyTavern extras) are kept
  lorebook.append(row);
  return row;
}

function addEmotion(tag = "", target = {}) {
  const input = (value, testid, label) => {
    const node = el("input", { "data-testid": testid, "aria-label": label, autocomplete: "off" });
    node.value = value || "";
    return node;
  };
  const row = el("tr", { "data-testid": "emotion" },
    el("td", {}, input(tag, "emotion-tag", "Emotion tag")),
    el("td", {}, input(target.expression, "emotion-expression", "Expression")),
    el("td", {}, input(target.motion, "emotion-motion", "Motion")),
    el("td", { class: "actions" }, removeButton("Remove this emotion")));
  emotions.append(row);
  return row;
}

function describe(c) {
  if (!c) return "A new character of your own.";
  const where = c.derived_from ? `your copy of ${c.derived_from}` : c.imported_from ? `imported from ${c.imported_from}`
    : c.local ? "made by you" : "from the catalog";
  return `${c.id} · version ${c.version} · ${where}`;
}

function fill(c) {
  character = c;
  for (const name of TEXT_FIELDS) form.elements[name].value = (c && c[name]) || "";
  greetings.replaceChildren();
  for (const text of (c && c.greetings) || []) addGreeting(text);
  lorebook.replaceChildren();
  for (const entry of (c && c.lorebook) || []) addLore(entry);
  emotions.replaceChildren();
  for (const [tag, target] of Object.entries((c && c.emotions) || {})) addEmotion(tag, target);
  const llm = (c && c.llm) || {};
  const models = (c && c.models) || {};
  setPick(form.elements.model_llm, llm.model);
  for (const role of ["embedding", "asr", "vad"]) setPick(form.elements[`model_${role}`], models[role]);
  setPick(form.elements.llm_lora, llm.lora);
  form.elements.llm_lora_weight.value = String(llm.lora_weight ?? 1);
  const style = (c && c.image_style) || {};
  form.elements.style_prefix.value = style.prompt_prefix || "";
  form.elements.style_negative.value = style.negative_prompt || "";
  setPick(form.elements.style_lora, style.lora);
  form.elements.style_lora_weight.value = String(style.lora_weight ?? 0.8);
  form.elements.audience.value = (c && c.audience) || "";
  const avatar = (c && c.avatar) || {};
  const kind = avatar.live2d ? "live2d" : avatar.image ? "image" : "";
  form.querySelector(`input[name="avatar_kind"][value="${kind}"]`).checked = true;
  setPick(form.elements.live2d, avatar.live2d);
  form.elements.picture.value = "";
  const preview = $("picture-preview");
  preview.hidden = !avatar.url;
  if (avatar.url) preview.src = avatar.url;
  showAvatarKind();
  form.elements.voice_engine.value = (c && c.voice && c.voice.engine) || "";
  form.elements.voice_id.value = (c && c.voice && c.voice.voice) || "";
  $("character-meta").textContent = describe(c);
  $("import-lorebook").hidden = !c; // a world is added to a saved character
  if (forkNote) forkNote.hidden = !c || c.local;
  if (c) {
    const title = `Edit ${c.name}`;
    $("page-title").textContent = title;
    document.title = `${title} · Zishu`;
    const talk = $("talk");
    if (talk) talk.href = `/companion?character=${encodeURIComponent(c.id)}`;
    history.replaceState(null, "", `/characters/${idPath(c.id)}/edit`);
  }
}

function splitKeys(text) {
  return text.split(",").map((k) => k.trim()).filter(Boolean);
}

/** The form as the API's fields; throws an Error saying what to fix. */
function collect() {
  const fields = {};
  for (const name of TEXT_FIELDS) fields[name] = form.elements[name].value;
  if (!fields.name.trim()) throw new Error("Give the character a name.");
  if (!fields.persona.trim()) throw new Error("Write the persona: who the character is.");
  fields.greetings = [...greetings.querySelectorAll("textarea")].map((a) => a.value).filter((t) => t.trim());
  fields.lorebook = [...lorebook.querySelectorAll('[data-testid="lore-entry"]')].map((row, i) => {
    const original = row.original || {};
    const text = $("lore-keys", row).value;
    const keys = text === (original.keys || []).join(", ") ? original.keys : splitKeys(text);
    if (!keys.length) throw new Error(`Lorebook entry ${i + 1} needs at least one keyword.`);
    const priority = Number.parseInt($("lore-priority", row).value || "0", 10);
    return { ...original, keys, content: $("lore-content", row).value, constant: $("lore-constant", row).checked,
      priority: Number.isNaN(priority) ? 0 : priority };
  });
  fields.emotions = {};
  [...emotions.querySelectorAll('[data-testid="emotion"]')].forEach((row, i) => {
    const tag = $("emotion-tag", row).value.trim();
    const expression = $("emotion-expression", row).value.trim() || null;
    const motion = $("emotion-motion", row).value.trim() || null;
    if (!tag && !expression && !motion) return;
    if (!tag) throw new Error(`Emotion row ${i + 1} has no tag.`);
    if (tag in fields.emotions) throw new Error(`The emotion tag [${tag}] appears twice.`);
    fields.emotions[tag] = { expression, motion };
  });
  const engine = form.elements.voice_engine.value.trim();
  const voice = form.elements.voice_id.value.trim() || null;
  if (!engine && voice) throw new Error("Choose the engine that speaks with this voice.");
  const before = (character && character.voice) || {};
  fields.voice = engine ? { ...before, engine, voice } : null;
  const weight = (name, fallback) => {
    const value = Number.parseFloat(form.elements[name].value);
    return Number.isNaN(value) ? fallback : value;
  };
  const model = form.elements.model_llm.value;
  const lora = form.elements.llm_lora.value || null;
  if (lora && !model) throw new Error("A LoRA is made for one model: choose the language model it goes with.");
  fields.llm = model ? { model, lora, lora_weight: weight("llm_lora_weight", 1) } : null;
  const models = {};
  for (const role of ["embedding", "asr", "vad"]) {
    const id = form.elements[`model_${role}`].value;
    if (id) models[role] = id;
  }
  fields.models = Object.keys(models).length ? models : null;
  const kept = (character && character.image_style && character.image_style.style) || null; // the studio style
  const style = { prompt_prefix: form.elements.style_prefix.value, negative_prompt: form.elements.style_negative.value,
    lora: form.elements.style_lora.value || null, lora_weight: weight("style_lora_weight", 0.8), style: kept };
  fields.image_style = style.prompt_prefix || style.negative_prompt || style.lora || style.style ? style : null;
  fields.audience = form.elements.audience.value || null;
  const kind = avatarKind();
  const had = (character && character.avatar) || {};
  if (kind === "live2d") {
    if (!form.elements.live2d.value) throw new Error("Choose the Live2D model, or another kind of avatar.");
    fields.avatar = { live2d: form.elements.live2d.value };
  } else if (kind === "image") {
    if (!had.image && !form.elements.picture.files.length) throw new Error("Choose a picture for the avatar.");
    fields.avatar = had.image ? { image: had.image } : null; // a new picture is sent beside the fields
  } else {
    fields.avatar = null;
  }
  return fields;
}

/** The picture chosen in the form, when the avatar is a picture and one was chosen. */
function chosenPicture() {
  return avatarKind() === "image" ? form.elements.picture.files[0] || null : null;
}

/** Save ``fields`` of character ``id`` with ``picture`` as its avatar (one new version). */
function savePicture(id, fields, picture) {
  const body = new FormData();
  body.append("file", picture);
  body.append("fields", JSON.stringify(fields));
  return api(`/api/characters/${idPath(id)}/picture`, { method: "POST", body });
}

async function undo(saved) {
  const { undone, character: current } = await api(`/api/characters/${idPath(saved.id)}/undo`, { method: "POST" });
  if (current) {
    fill(current);
    toast(`Back to version ${current.version}.`, "success");
  } else if (saved.derived_from) {
    const original = saved.derived_from.split("@")[0];
    fill((await api(`/api/characters/${idPath(original)}`)).character);
    toast(`Your copy is gone; this is ${original} as installed.`, "success");
  } else {
    window.location.assign("/characters");
  }
  return undone;
}

async function save() {
  const fields = collect();
  const picture = chosenPicture();
  if (!character) {
    const { character: made } = await api("/api/characters", { method: "POST", body: fields });
    if (picture) await savePicture(made.id, {}, picture);
    window.location.assign(`/characters?created=${encodeURIComponent(made.id)}`);
    return;
  }
  const result = picture ? await savePicture(character.id, fields, picture)
    : await api(`/api/characters/${idPath(character.id)}`, { method: "PUT", body: fields });
  if (!result.changed) {
    toast("Nothing changed.");
    return;
  }
  const saved = result.character;
  fill(saved);
  const what = result.forked_from ? `Saved ${saved.name} as your own copy (${saved.id}).`
    : `Saved ${saved.name} (version ${saved.version}).`;
  undoToast(what, () => undo(saved));
}

form.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action='remove']");
  if (button) button.closest('[data-testid="greeting"], [data-testid="lore-entry"], [data-testid="emotion"]').remove();
});
form.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action='install']");
  if (!button) return;
  const select = button.closest(".model-pick").querySelector("select");
  button.disabled = true;
  try {
    if (await installAfterAsking(select.value)) {
      toast(`Installing ${select.value}: follow it in Jobs. It is ready once installed.`, "success");
    }
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});
form.addEventListener("change", (event) => {
  if (event.target.matches("select[data-part]")) showInstall(event.target);
  if (event.target.name === "avatar_kind") showAvatarKind();
  if (event.target.name === "picture" && event.target.files[0]) {
    const preview = $("picture-preview");
    preview.src = URL.createObjectURL(event.target.files[0]);
    preview.hidden = false;
  }
});
$("add-greeting").addEventListener("click", () => addGreeting().focus());
$("add-lore").addEventListener("click", () => $("lore-keys", addLore()).focus());
$("add-emotion").addEventListener("click", () => $("emotion-tag", addEmotion()).focus());

/** Add the entries of the SillyTavern world-info ``file`` to the character (a new version, with Undo). */
async function importLorebook(file) {
  const body = new FormData();
  body.append("file", file);
  const result = await api(`/api/characters/${idPath(character.id)}/lorebook`, { method: "POST", body });
  const saved = result.character;
  fill(saved);
  const where = result.forked_from ? ` into your own copy (${saved.id})` : "";
  undoToast(`Imported ${result.added} lorebook entr${result.added === 1 ? "y" : "ies"} from ${file.name}${where}.`,
    () => undo(saved));
}

$("import-lorebook").addEventListener("click", () => form.elements.world_info.click());
form.elements.world_info.addEventListener("change", async (event) => {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !character) return;
  try {
    await importLorebook(file);
  } catch (error) {
    reportError(error);
  }
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("save-character");
  button.disabled = true;
  try {
    await save();
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});

fill(character);
if (!character) addGreeting();
loadChoices();
// The button stays disabled until the form can save (a click before this script ran would submit the
// fields as a plain GET, putting them in the address bar).
$("save-character").disabled = false;
$("save-character").removeAttribute("title");
