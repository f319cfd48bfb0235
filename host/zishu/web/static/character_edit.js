// The character form: make a character, or edit one (each save is a new version; Undo goes back).
// Editing a catalog character saves your own copy; undoing that copy's only version returns to the original.
import { $, api, el, idPath, reportError, toast, undoToast } from "./app.js";

const form = $("character-form");
const greetings = $("greetings");
const lorebook = $("lorebook");
const emotions = $("emotions");
const forkNote = $("fork-note");
let character = JSON.parse(document.getElementById("character-data").textContent);

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
  form.elements.voice_engine.value = (c && c.voice && c.voice.engine) || "";
  form.elements.voice_id.value = (c && c.voice && c.voice.voice) || "";
  $("character-meta").textContent = describe(c);
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
  return fields;
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
  if (!character) {
    const { character: made } = await api("/api/characters", { method: "POST", body: fields });
    window.location.assign(`/characters?created=${encodeURIComponent(made.id)}`);
    return;
  }
  const result = await api(`/api/characters/${idPath(character.id)}`, { method: "PUT", body: fields });
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
$("add-greeting").addEventListener("click", () => addGreeting().focus());
$("add-lore").addEventListener("click", () => $("lore-keys", addLore()).focus());
$("add-emotion").addEventListener("click", () => $("emotion-tag", addEmotion()).focus());

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
// The button stays disabled until the form can save (a click before this script ran would submit the
// fields as a plain GET, putting them in the address bar).
$("save-character").disabled = false;
$("save-character").removeAttribute("title");
