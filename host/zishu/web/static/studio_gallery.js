// The Studio's gallery: the grid (search by prompt or character, favourites, pages loaded as the user
// scrolls) and the details drawer (parameters with Copy, Reuse, Edit, Upscale, Remove background,
// Download, Use as avatar, Favourite, Delete with Undo).
import { $, api, debounce, idPath, reportError, toast, undoToast } from "./app.js";

const PAGE = 24;
const grid = $("gallery");
const template = document.getElementById("thumb-template");
const drawer = $("details");
const search = $("gallery-search");
const favourites = $("gallery-favourites");
const more = $("gallery-more");

let shown = [];
let total = 0;
let loading = null;
let generation = 0;
let current = null;
let hooks = { reuse: () => {}, edit: () => {}, capability: () => null, offerInstall: () => null };

function query(offset) {
  const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
  if (search.value.trim()) params.set("q", search.value.trim());
  if (favourites.checked) params.set("favourite", "1");
  return `/api/studio/gallery?${params}`;
}

function thumb(image) {
  const node = template.content.firstElementChild.cloneNode(true);
  node.dataset.imageId = image.id;
  node.classList.toggle("blocked", image.blocked);
  const img = node.querySelector("img");
  img.src = image.url;
  img.alt = image.prompt;
  img.width = image.width;
  img.height = image.height;
  const blocked = $("gallery-blocked", node);
  blocked.hidden = !image.blocked;
  blocked.textContent = image.blocked ? "Blocked by safe mode" : "";
  blocked.title = image.blocked ? image.blocked_reason || "" : "";
  $("gallery-star", node).hidden = !image.favourite;
  $("gallery-open", node).title = image.prompt;
  return node;
}

function render() {
  grid.replaceChildren(...shown.map(thumb));
  $("gallery-empty").hidden = shown.length > 0;
  $("gallery-total").textContent = total ? `${total} picture${total === 1 ? "" : "s"}` : "";
  more.hidden = shown.length >= total;
}

/** Load the next page (or, with ``reset``, the first again). */
async function load(reset = false) {
  if (loading && !reset) return loading;
  const mine = reset ? ++generation : generation;
  const offset = reset ? 0 : shown.length;
  loading = (async () => {
    try {
      const data = await api(query(offset));
      if (mine !== generation) return;
      shown = reset ? data.images : [...shown, ...data.images.filter((i) => !shown.some((s) => s.id === i.id))];
      total = data.total;
      render();
    } catch (error) {
      reportError(error);
    } finally {
      loading = null;
    }
  })();
  return loading;
}

export function refreshGallery() {
  return load(true);
}

search.addEventListener("input", debounce(() => load(true), 250));
favourites.addEventListener("change", () => load(true));
more.addEventListener("click", () => load());
if (window.IntersectionObserver) {
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !more.hidden) load();
  }).observe(more);
}

grid.addEventListener("click", (event) => {
  const item = event.target.closest("[data-image-id]");
  if (!item) return;
  const image = shown.find((i) => String(i.id) === item.dataset.imageId);
  if (image) open(image);
});

// -- the drawer ------------------------------------------------------------------------------------

function replace(image) {
  shown = shown.map((i) => (i.id === image.id ? image : i));
  if (current && current.id === image.id) current = image;
  render();
}

function showDetails(image) {
  current = image;
  drawer.dataset.imageId = image.id;
  $("details-title", drawer).textContent = `Picture #${image.id}`;
  const img = $("details-image", drawer);
  img.src = image.url;
  img.alt = image.prompt;
  img.classList.toggle("blurred", image.blocked);
  const blocked = $("details-blocked", drawer);
  blocked.hidden = !image.blocked;
  blocked.textContent = image.blocked ? `Blocked by safe mode: ${image.blocked_reason || "no reason given"}` : "";
  $("details-parameters", drawer).textContent = image.parameters;
  $("details-parent", drawer).hidden = !image.parent;
  $("details-parent-open", drawer).textContent = image.parent ? `picture #${image.parent}` : "";
  const star = $("details-favourite", drawer);
  star.textContent = image.favourite ? "★ Favourite" : "☆ Favourite";
  star.setAttribute("aria-pressed", String(image.favourite));
  setDownload();
  const note = $("improve-capability", drawer);
  const missing = ["upscale", "background"].map((name) => hooks.capability(name)).filter(Boolean);
  note.replaceChildren(...missing.map((m) => hooks.offerInstall(m)));
  note.hidden = missing.length === 0;
  // a blocked picture is kept to be seen blurred, not to be worked on or taken out of the gallery
  $("details-upscale", drawer).disabled = image.blocked || Boolean(hooks.capability("upscale"));
  $("details-background", drawer).disabled = image.blocked || Boolean(hooks.capability("background"));
  $("details-edit", drawer).disabled = image.blocked;
  $("details-avatar", drawer).disabled = image.blocked;
  $("details-download", drawer).hidden = image.blocked;
  $("download-format", drawer).disabled = image.blocked;
}

function open(image) {
  showDetails(image);
  if (!drawer.open) drawer.showModal();
}

function setDownload() {
  if (!current) return;
  const format = $("download-format", drawer).value;
  const link = $("details-download", drawer);
  link.href = `/api/studio/gallery/${current.id}/download?format=${format}`;
  link.setAttribute("download", `zishu-${current.id}.${format === "jpeg" ? "jpg" : format}`);
}
$("download-format", drawer).addEventListener("change", setDownload);
$("details-close", drawer).addEventListener("click", () => drawer.close());
$("details-parent-open", drawer).addEventListener("click", async () => {
  try {
    const { image } = await api(`/api/studio/gallery/${current.parent}`);
    open(image);
  } catch (error) {
    reportError(error); // emptied from the trash since: "no picture N in the gallery"
  }
});
drawer.addEventListener("click", (event) => {
  if (event.target === drawer) drawer.close(); // a click on the backdrop
});

/** Copy ``text``: the Clipboard API, else a selected textarea and the copy command. */
async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (error) {
    const area = document.createElement("textarea");
    area.value = text;
    area.className = "visually-hidden";
    drawer.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

$("details-copy", drawer).addEventListener("click", async () => {
  if (!current) return;
  if (await copy(current.parameters)) toast("Parameters copied.", "success");
  else toast("Could not copy: select the parameters text and copy it.", "error");
});

$("details-favourite", drawer).addEventListener("click", async () => {
  try {
    const { image } = await api(`/api/studio/gallery/${current.id}/favourite`,
      { method: "POST", body: { favourite: !current.favourite } });
    replace(image);
    showDetails(image);
    if (favourites.checked && !image.favourite) load(true);
  } catch (error) {
    reportError(error);
  }
});

$("details-reuse", drawer).addEventListener("click", async () => {
  try {
    const { request } = await api(`/api/studio/gallery/${current.id}/reuse`);
    hooks.reuse(request);
    drawer.close();
    toast("The form holds this picture's settings.", "success");
  } catch (error) {
    reportError(error);
  }
});

$("details-edit", drawer).addEventListener("click", () => {
  const image = current;
  drawer.close();
  hooks.edit(image);
});

$("details-delete", drawer).addEventListener("click", async () => {
  const image = current;
  try {
    await api(`/api/studio/gallery/${image.id}`, { method: "DELETE" });
  } catch (error) {
    reportError(error);
    return;
  }
  drawer.close();
  shown = shown.filter((i) => i.id !== image.id);
  total = Math.max(0, total - 1);
  render();
  undoToast(`Picture #${image.id} moved to the trash.`, async () => {
    await api(`/api/studio/gallery/${image.id}/restore`, { method: "POST" });
    await load(true);
  });
});

async function improve(button, path, body, done) {
  button.disabled = true;
  const label = button.textContent;
  button.textContent = `${label}…`;
  try {
    const { image } = await api(`/api/studio/gallery/${current.id}/${path}`, { method: "POST", body });
    toast(done(image), "success");
    await load(true);
    open(image);
  } catch (error) {
    const note = $("improve-capability", drawer);
    note.hidden = !error.install;
    if (!error.install) return reportError(error);
    toast(error.message, "error"); // its Install button is the drawer's
    note.replaceChildren(hooks.offerInstall({ message: error.message, install: error.install }));
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

$("details-upscale", drawer).addEventListener("click", (event) => {
  const scale = Number($("upscale-scale", drawer).value);
  improve(event.currentTarget, "upscale", { scale },
    (image) => `Upscaled to ${image.width}×${image.height}: picture #${image.id}.`);
});
$("details-background", drawer).addEventListener("click", (event) => {
  improve(event.currentTarget, "background", {}, (image) => `Background removed: picture #${image.id}.`);
});

$("details-avatar", drawer).addEventListener("click", async () => {
  const character = $("avatar-character", drawer).value;
  const emotion = $("avatar-emotion", drawer).value;
  if (!character) {
    toast("Choose a character first.", "error");
    return;
  }
  try {
    const saved = await api(`/api/studio/characters/${idPath(character)}/avatar`,
      { method: "POST", body: { images: { [emotion]: current.id } } });
    toast(`${saved.character || character} now shows this picture when ${emotion}.`, "success");
  } catch (error) {
    reportError(error);
  }
});

/** Open the details of gallery picture ``id`` (a run's picture, which the grid may not show). */
export async function openPicture(id) {
  try {
    const { image } = await api(`/api/studio/gallery/${id}`);
    open(image);
  } catch (error) {
    reportError(error);
  }
}

/** Start the gallery: ``options`` are the page's hooks (reuse, edit, capability, offerInstall) and the
 * characters for "Use as avatar". */
export function startGallery(options, characters) {
  hooks = { ...hooks, ...options };
  const pick = $("avatar-character", drawer);
  pick.replaceChildren(...characters.map((c) => new Option(`${c.name} (${c.id})`, c.id)));
  if (!characters.length) pick.append(new Option("No characters yet", ""));
  return load(true);
}
