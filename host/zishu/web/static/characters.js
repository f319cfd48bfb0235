// Characters: the installed characters as cards (talk, edit, delete with undo) and card import.
import { $, api, confirmDialog, el, idPath, reportError, toast, undoToast } from "./app.js";

const list = $("character-list");
const empty = $("characters-empty");
const importInput = $("import-card");

function initials(name) {
  return [...name.trim()].slice(0, 1).join("").toUpperCase() || "?";
}

function avatar(character) {
  if (character.avatar.url) {
    return el("img", { class: "character-avatar", src: character.avatar.url, alt: "", loading: "lazy" });
  }
  return el("span", { class: "character-avatar placeholder", "aria-hidden": "true" }, initials(character.name));
}

function origin(character) {
  if (character.derived_from) return `Your copy of ${character.derived_from}`;
  if (character.imported_from) return `Imported from ${character.imported_from}`;
  return character.local ? "Made by you" : "From the catalog";
}

function card(character) {
  const id = character.id;
  const actions = el("div", { class: "row" },
    el("a", { class: "button primary", href: `/companion?character=${encodeURIComponent(id)}`, "data-testid": "talk" }, "Talk"),
    el("a", { class: "button", href: `/characters/${idPath(id)}/edit`, "data-testid": "edit" }, "Edit"),
    character.local
      ? el("button", { type: "button", class: "danger-ghost", "data-action": "delete", "data-testid": "delete" }, "Delete")
      : null);
  return el("article", { class: "card character-card", "data-testid": "character-card", dataset: { id } },
    el("header", { class: "row" }, avatar(character),
      el("div", { class: "grow" },
        el("div", { class: "card-title", "data-testid": "character-name" }, character.name),
        el("p", { class: "muted mono small" }, `${id} · ${character.version}`),
        el("p", { class: "muted small", "data-testid": "character-origin" }, origin(character)))),
    el("p", { class: "character-greeting", "data-testid": "character-greeting" },
      character.greeting_emotion
        ? el("span", { class: "emotion-chip", "data-testid": "greeting-emotion",
          dataset: { emotion: character.greeting_emotion.name }, title: character.greeting_emotion.name },
        character.greeting_emotion.tag)
        : null,
      character.greeting_emotion ? " " : null,
      character.greeting || character.summary),
    actions);
}

function render(characters, highlight = null) {
  list.replaceChildren(...characters.map(card));
  empty.hidden = characters.length > 0;
  if (highlight) {
    const node = list.querySelector(`[data-id="${CSS.escape(highlight)}"]`);
    if (node) {
      node.classList.add("highlight");
      node.scrollIntoView({ block: "nearest" });
    }
  }
}

async function refresh(highlight = null) {
  const { characters } = await api("/api/characters");
  render(characters, highlight);
}

async function remove(node) {
  const id = node.dataset.id;
  const name = $("character-name", node).textContent;
  const sure = await confirmDialog({ title: `Delete ${name}?`,
    text: "The character and all its versions go to the trash; Undo brings them back.", ok: "Delete" });
  if (!sure) return;
  await api(`/api/characters/${idPath(id)}`, { method: "DELETE" });
  await refresh();
  undoToast(`Deleted ${name}.`, async () => {
    await api(`/api/characters/${idPath(id)}/restore`, { method: "POST" });
    await refresh(id);
    toast(`Restored ${name}.`, "success");
  });
}

/** POST the chosen card file as multipart form data. */
async function importCard(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  return (await api("/api/characters/import", { method: "POST", body: form })).character;
}

list.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action='delete']");
  if (!button) return;
  button.disabled = true;
  try {
    await remove(button.closest('[data-testid="character-card"]'));
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});

importInput.addEventListener("change", async () => {
  const file = importInput.files[0];
  if (!file) return;
  try {
    const character = await importCard(file);
    await refresh(character.id);
    undoToast(`Imported ${character.name} from ${file.name}.`, async () => {
      await api(`/api/characters/${idPath(character.id)}`, { method: "DELETE" });
      await refresh();
    });
  } catch (error) {
    reportError(error);
  } finally {
    importInput.value = "";
  }
});

const created = new URLSearchParams(window.location.search).get("created");
render(JSON.parse(document.getElementById("characters-data").textContent), created);
if (created) {
  const node = list.querySelector(`[data-id="${CSS.escape(created)}"]`);
  if (node) toast(`Created ${$("character-name", node).textContent}.`, "success");
  history.replaceState(null, "", "/characters");
}
