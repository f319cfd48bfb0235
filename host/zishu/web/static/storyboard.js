// Storyboard: the projects, a project's form (new or edit, with its background music), its shot cards
// (edit, drag or ↑/↓ to reorder, delete with Undo, Regenerate), Render all with each shot's status live
// from the job stream, a preview (the exported MP4, or the shots as a slideshow with their narration)
// and Export with its options, progress, Cancel, Open folder and Download. The server does the work
// (web/storyboard.py); a 400 that names a field ("story: must not be empty") is shown on that field.
import {
  $, ACTIVE, api, confirmDialog, el, jobs, reportError, showInstallButton, showProgress, toast, undoToast,
} from "./app.js";

const page = {
  projects: [],
  project: null, // the open project, with its shots
  formMode: null, // "new" | "edit" | null
  music: undefined, // the form's music: a kept file's path, null (none), undefined (unchanged)
  cards: new Map(), // shot id -> its <li>
  shotJobs: new Map(), // shot id -> its newest storyboard-shot job
  exportJob: null, // the project's newest storyboard-export job
  finished: "", // the project's finished jobs last seen (a change means its files changed)
  view: null, // "video" | "slides"
  edits: 0, // counts the edits made here, so an old Undo toast does not take back a newer edit
};

const form = $("project-form");
const shotList = $("shots");
const template = document.getElementById("shot-template");
const STATUS_TEXT = { PENDING: "Waiting", RUNNING: "Rendering", SUCCESS: "Ready", FAILED: "Failed",
  CANCELLED: "Cancelled", INTERRUPTED: "Interrupted" };

// -- field errors ---------------------------------------------------------------------------------

/** Where a message "name: …" belongs inside ``root``: the element marked data-field, or the named input. */
function fieldFor(root, message) {
  const match = /^([a-z_]+)(?:\.[\w.]+)?: /.exec(message || "");
  if (!match) return null;
  const name = { voice: "voice_engine", music: "music_file" }[match[1]] || match[1];
  const named = root.querySelector(`[name="${name}"]`);
  return root.querySelector(`[data-field="${match[1]}"]`) || (named && (named.closest(".field") || named));
}

function clearErrors(root) {
  root.querySelectorAll(".field-error").forEach((node) => node.remove());
  root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
}

/** Show the error on its field inside ``root`` when it names one there; otherwise as a toast. */
function showError(root, error) {
  const field = fieldFor(root, error && error.message);
  if (!field) return reportError(error);
  const input = field.matches("input, select, textarea") ? field : field.querySelector("input, select, textarea");
  const box = field.matches(".field") ? field : field.parentElement;
  box.querySelectorAll(":scope > .field-error").forEach((node) => node.remove());
  const id = `error-${Math.random().toString(36).slice(2)}`;
  box.append(el("span", { class: "field-error", id, role: "alert", "data-testid": "field-error" }, error.message));
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    if (input.type !== "file") input.focus();
  }
  return null;
}

// -- the projects -----------------------------------------------------------------------------------

function projectUrl(id) {
  return id ? `/storyboard?project=${id}` : "/storyboard";
}

async function loadProjects() {
  page.projects = (await api("/api/storyboards")).storyboards;
  renderProjects();
}

function renderProjects() {
  const list = $("project-list");
  list.replaceChildren(...page.projects.map((p) => el("li", {},
    el("a", { href: projectUrl(p.id), class: `sb-project${page.project && page.project.id === p.id ? " active" : ""}`,
      "data-testid": "project-link", dataset: { id: p.id },
      "aria-current": page.project && page.project.id === p.id ? "page" : null },
    el("span", { class: "sb-project-title" }, p.title),
    el("span", { class: "muted small" }, `${p.aspect} · ${p.resolution}`)))));
  $("projects-empty").hidden = page.projects.length > 0;
}

async function openProject(id, { push = true } = {}) {
  try {
    page.project = await api(`/api/storyboards/${id}`);
  } catch (error) {
    reportError(error);
    page.project = null;
  }
  if (push) history.pushState({ project: id }, "", projectUrl(page.project && page.project.id));
  page.cards.forEach((node) => node.remove());
  page.cards.clear();
  page.view = null;
  page.finished = "";
  stopSlides();
  closeForm();
  render();
  renderProjects();
  watchJobs(jobs);
}

async function refresh() {
  if (!page.project) return;
  try {
    page.project = await api(`/api/storyboards/${page.project.id}`);
  } catch (error) {
    reportError(error);
    return;
  }
  render();
}

function render() {
  const project = page.project;
  $("project").hidden = !project || page.formMode !== null;
  $("storyboard-empty").hidden = Boolean(project) || page.formMode !== null;
  if (!project) return;
  document.title = `${project.title} · Storyboard · Zishu`;
  $("project-title").textContent = project.title;
  $("project-story").textContent = project.story;
  const facts = [project.aspect, project.resolution, project.style && `style ${project.style}`,
    project.character && `with ${project.character}`, project.voice && `voice ${project.voice.voice || project.voice.engine}`,
    project.music && `music ${musicName(project.music)}`].filter(Boolean);
  $("project-facts").replaceChildren(...facts.map((fact) => el("span", { class: "chip" }, fact)));
  renderShots();
  renderExport();
  renderPreview();
}

function basename(path) {
  return String(path || "").split(/[\\/]/).pop();
}

/** A kept music file's name as the user gave it (without the content hash it is kept under). */
function musicName(path) {
  return basename(path).replace(/^[0-9a-f]{12}-/, "");
}

function seconds(value) {
  return `${Number(value).toFixed(1)} s`;
}

// -- the project form ---------------------------------------------------------------------------------

let choicesLoaded = false;

async function loadChoices() {
  if (choicesLoaded) return;
  choicesLoaded = true;
  const [characters, styles, parts] = await Promise.all([
    api("/api/characters").catch(() => ({ characters: [] })),
    api("/api/studio/styles").catch(() => ({ styles: [] })),
    api("/api/characters/choices").catch(() => ({ choices: {} })),
  ]);
  const select = form.elements.character;
  select.append(...characters.characters.map((c) => el("option", { value: c.id }, `${c.name} (${c.id})`)));
  $("style-options").replaceChildren(...styles.styles.map((s) => el("option", { value: s.name }, s.title || s.name)));
  $("voice-options").replaceChildren(...((parts.choices || {}).voice || [])
    .map((v) => el("option", { value: v.id }, v.name || v.id)));
}

async function openForm(mode) {
  await loadChoices();
  page.formMode = mode;
  stopSlides();
  clearErrors(form);
  form.reset();
  const project = mode === "edit" ? page.project : null;
  page.music = project ? undefined : null;
  $("project-form-title").textContent = project ? `Edit “${project.title}”` : "New storyboard";
  $("project-save").textContent = project ? "Save" : "Create";
  $("project-form-close").hidden = !project && page.projects.length === 0;
  if (project) {
    const f = form.elements;
    f.title.value = project.title;
    f.story.value = project.story;
    f.style.value = project.style || "";
    f.aspect.value = project.aspect;
    f.resolution.value = project.resolution;
    if (project.character && ![...f.character.options].some((o) => o.value === project.character)) {
      f.character.append(el("option", { value: project.character }, project.character));
    }
    f.character.value = project.character || "";
    f.voice_engine.value = (project.voice && project.voice.engine) || "";
    f.voice_id.value = (project.voice && project.voice.voice) || "";
  }
  showMusic(project ? project.music : null);
  form.hidden = false;
  render();
  form.elements.story.focus();
}

function closeForm() {
  page.formMode = null;
  form.hidden = true;
  render();
}

function showMusic(path, detail = "") {
  $("music-name").textContent = path ? `${musicName(path)}${detail}` : "None";
  $("music-clear").hidden = !path;
}

async function chooseMusic() {
  const input = form.elements.music_file;
  const file = input.files && input.files[0];
  if (!file) return;
  clearErrors($("music-name").closest(".field"));
  $("music-name").textContent = `Checking ${file.name}…`;
  const body = new FormData();
  body.append("file", file);
  try {
    const kept = await api("/api/storyboards/music", { method: "POST", body });
    page.music = kept.path;
    showMusic(kept.path, ` · ${seconds(kept.seconds)}`);
  } catch (error) {
    page.music = page.formMode === "edit" ? undefined : null;
    showMusic(page.formMode === "edit" && page.project ? page.project.music : null);
    showError(form, error.message.startsWith("music") ? error : new Error(`music: ${error.message}`));
  } finally {
    input.value = "";
  }
}

function formFields() {
  const f = form.elements;
  const fields = {
    story: f.story.value,
    style: f.style.value.trim() || null,
    aspect: f.aspect.value,
    resolution: f.resolution.value,
    character: f.character.value || null,
  };
  if (f.title.value.trim()) fields.title = f.title.value.trim();
  const engine = f.voice_engine.value.trim();
  const voice = f.voice_id.value.trim() || null;
  if (!engine && voice) throw new Error("voice: choose the engine that speaks with this voice");
  fields.voice = engine ? { engine, voice } : null;
  if (page.music !== undefined) fields.music = page.music;
  return fields;
}

async function saveForm(event) {
  event.preventDefault();
  clearErrors(form);
  const save = $("project-save");
  save.disabled = true;
  try {
    const fields = formFields();
    if (page.formMode === "edit") {
      await api(`/api/storyboards/${page.project.id}`, { method: "PATCH", body: fields });
      toast("Saved.", "success");
      closeForm();
      await Promise.all([refresh(), loadProjects()]);
    } else {
      const made = await api("/api/storyboards", { method: "POST", body: fields });
      await loadProjects();
      await openProject(made.id);
      toast(`Made “${made.title}”. Now write its shots, or add them by hand.`, "success");
    }
  } catch (error) {
    showError(form, error);
  } finally {
    save.disabled = false;
  }
}

// -- shots -----------------------------------------------------------------------------------------------

function fileUrl(name, version) {
  return `/api/storyboards/${page.project.id}/files/${name.split("/").map(encodeURIComponent).join("/")}?v=${version}`;
}

/** What the shot's card says: its job's state while one works on it, else the shot's own
 * (PENDING there means nothing is made yet, so it reads "Not rendered"). */
function shotStatus(shot) {
  const job = page.shotJobs.get(shot.id);
  if (job && ACTIVE.has(job.status)) {
    return { status: job.status, label: STATUS_TEXT[job.status], message: job.message || "", busy: true };
  }
  const label = shot.status === "PENDING" ? "Not rendered" : STATUS_TEXT[shot.status] || shot.status;
  return { status: shot.status, label, message: "", busy: shot.status === "RUNNING" };
}

function card(shot) {
  let node = page.cards.get(shot.id);
  if (!node) {
    node = template.content.firstElementChild.cloneNode(true);
    node.dataset.shotId = shot.id;
    page.cards.set(shot.id, node);
  }
  const count = page.project.shots.length;
  const number = shot.position + 1;
  node.dataset.position = shot.position;
  $("shot-number", node).textContent = String(number);
  const up = $("shot-up", node);
  const down = $("shot-down", node);
  up.disabled = shot.position === 0;
  down.disabled = shot.position === count - 1;
  up.setAttribute("aria-label", `Move shot ${number} up`);
  down.setAttribute("aria-label", `Move shot ${number} down`);
  $("shot-delete", node).setAttribute("aria-label", `Delete shot ${number}`);
  $("shot-regenerate", node).setAttribute("aria-label", `Regenerate shot ${number}`);
  const { status, label, message, busy } = shotStatus(shot);
  const badge = $("shot-status", node);
  badge.textContent = label;
  badge.className = `badge status-${busy || status !== "PENDING" ? status.toLowerCase() : "new"}`;
  node.dataset.status = status;
  $("shot-message", node).textContent = message;
  $("shot-duration", node).textContent = seconds(shot.duration);
  const menu = $("shot-regenerate-menu", node);
  menu.classList.toggle("busy", busy);
  if (busy) menu.open = false;
  menu.querySelectorAll("button").forEach((b) => { b.disabled = busy; });
  const thumb = $("shot-thumb", node);
  thumb.dataset.aspect = page.project.aspect;
  const image = $("shot-image", node);
  if (shot.image) {
    const src = fileUrl(shot.image, `${shot.job_id || 0}-${shot.status}`);
    if (image.getAttribute("src") !== src) image.src = src;
    image.alt = `Shot ${number}: ${shot.prompt}`;
  } else {
    image.removeAttribute("src");
  }
  image.hidden = !shot.image;
  $("shot-no-image", node).hidden = Boolean(shot.image);
  $("shot-play", node).hidden = !shot.audio;
  for (const name of ["prompt", "narration"]) {
    const input = node.querySelector(`[name="${name}"]`);
    if (document.activeElement !== input && !input.closest(".field").querySelector(".field-error")) {
      input.value = shot[name];
    }
  }
  $("shot-error", node).textContent = status === "FAILED" ? shot.error || "" : "";
  const job = page.shotJobs.get(shot.id); // failed for want of a catalog model: offer it, then Regenerate
  const cure = status === "FAILED" && job && job.status === "FAILED" && job.extra ? job.extra.install : null;
  showInstallButton($("shot-install", node), cure || null, "shot-install-button");
  return node;
}

function renderShots() {
  const shots = page.project.shots;
  const known = new Set(shots.map((s) => s.id));
  for (const [id, node] of page.cards) {
    if (!known.has(id)) {
      node.remove();
      page.cards.delete(id);
    }
  }
  shots.forEach((shot, index) => {
    const node = card(shot);
    if (shotList.children[index] !== node) shotList.insertBefore(node, shotList.children[index] || null);
  });
  $("shots-empty").hidden = shots.length > 0;
  const ready = shots.filter((s) => s.status === "SUCCESS").length;
  $("shots-summary").textContent = shots.length
    ? `${ready} of ${shots.length} ready · ${seconds(page.project.duration)}` : "";
  const busy = shots.some((s) => shotStatus(s).busy);
  const renderAll = $("render-all");
  renderAll.disabled = shots.length === 0 || busy;
  renderAll.textContent = busy ? "Rendering…" : "Render all";
  const undo = $("undo-edit");
  undo.hidden = !page.project.can_undo;
  undo.textContent = page.project.can_undo ? `Undo: ${page.project.can_undo}` : "Undo";
}

function shotOf(node) {
  const id = Number(node.closest("[data-shot-id]").dataset.shotId);
  return page.project.shots.find((s) => s.id === id);
}

async function editShot(input) {
  const shot = shotOf(input);
  const name = input.name;
  if (!shot || input.value.trim() === shot[name]) return;
  const box = input.closest(".sb-shot");
  clearErrors(input.closest(".field"));
  try {
    await api(`/api/storyboards/${page.project.id}/shots/${shot.id}`, { method: "PATCH", body: { [name]: input.value } });
    page.edits += 1;
    await refresh();
  } catch (error) {
    showError(box, error);
  }
}

async function sendOrder(ids, focusId = null, focusAction = null) {
  try {
    page.project = await api(`/api/storyboards/${page.project.id}/order`, { method: "POST", body: { order: ids } });
    page.edits += 1;
  } catch (error) {
    reportError(error);
    await refresh();
    return;
  }
  render();
  if (focusId !== null) {
    const node = page.cards.get(focusId);
    const button = node && node.querySelector(`[data-action="${focusAction}"]`);
    const target = button && button.disabled ? node.querySelector("[data-action]:not(:disabled)") : button;
    if (target) target.focus();
  }
}

function move(shot, by) {
  const ids = page.project.shots.map((s) => s.id);
  const from = ids.indexOf(shot.id);
  const to = from + by;
  if (to < 0 || to >= ids.length) return;
  ids.splice(from, 1);
  ids.splice(to, 0, shot.id);
  sendOrder(ids, shot.id, by < 0 ? "up" : "down");
}

async function deleteShot(shot) {
  try {
    page.project = await api(`/api/storyboards/${page.project.id}/shots/${shot.id}`, { method: "DELETE" });
  } catch (error) {
    reportError(error);
    return;
  }
  page.edits += 1;
  const at = page.edits;
  render();
  undoToast(`Shot ${shot.position + 1} deleted.`, async () => {
    if (page.edits !== at || page.project.can_undo !== "delete a shot") {
      throw new Error("The storyboard changed since that delete; use the Undo button above the shots.");
    }
    await undo();
  });
}

async function undo() {
  const undone = await api(`/api/storyboards/${page.project.id}/undo`, { method: "POST" });
  page.project = undone;
  page.edits += 1;
  render();
  toast(`Undone: ${undone.undone}.`, "success");
}

async function renderShotsNow(body, button) {
  button.disabled = true;
  try {
    const { jobs: started } = await api(`/api/storyboards/${page.project.id}/render`, { method: "POST", body });
    if (started.length === 0) toast("Every shot is made already: use Regenerate on a shot to make it again.");
    await jobs.refresh();
    await refresh();
  } catch (error) {
    reportError(error);
  } finally {
    renderShots();
  }
}

function playNarration(shot) {
  const audio = $("slide-audio");
  stopSlides();
  audio.src = fileUrl(shot.audio, `${shot.job_id || 0}`);
  audio.play().catch(reportError);
}

// Drag and drop: the dragged card moves among the others as the pointer goes; the drop sends the order.
// A card is draggable only while held by its number or its picture, so text in its fields selects as usual.
let dragged = null;
const HANDLES = ".sb-shot-side, .sb-thumb";

shotList.addEventListener("pointerdown", (event) => {
  const node = event.target.closest(".sb-shot");
  if (node) node.draggable = Boolean(event.target.closest(HANDLES)) && !event.target.closest("button");
});

shotList.addEventListener("dragstart", (event) => {
  const node = event.target.closest && event.target.closest(".sb-shot");
  if (!node || event.target.matches("input, textarea")) return;
  dragged = node;
  node.classList.add("dragging");
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", node.dataset.shotId);
});

shotList.addEventListener("dragover", (event) => {
  if (!dragged) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "move";
  const over = event.target.closest(".sb-shot");
  if (!over || over === dragged) return;
  const box = over.getBoundingClientRect();
  const after = event.clientY > box.top + box.height / 2;
  shotList.insertBefore(dragged, after ? over.nextSibling : over);
});

shotList.addEventListener("drop", (event) => {
  if (dragged) event.preventDefault();
});

shotList.addEventListener("dragend", () => {
  if (!dragged) return;
  dragged.classList.remove("dragging");
  dragged.draggable = false;
  dragged = null;
  const ids = [...shotList.children].map((node) => Number(node.dataset.shotId));
  const before = page.project.shots.map((s) => s.id);
  if (ids.join() !== before.join()) sendOrder(ids);
});

shotList.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const shot = shotOf(button);
  if (!shot) return;
  const action = button.dataset.action;
  if (action === "up") move(shot, -1);
  else if (action === "down") move(shot, 1);
  else if (action === "delete") deleteShot(shot);
  else if (action === "play") playNarration(shot);
  else if (action === "regenerate") {
    button.closest("details").open = false;
    renderShotsNow({ shots: [shot.id], redo: button.dataset.redo.split(",") }, button);
  }
});

shotList.addEventListener("change", (event) => {
  if (event.target.matches("input[name], textarea[name]")) editShot(event.target);
});

// -- the job stream: each shot's status and the export's progress --------------------------------------

function watchJobs(feed) {
  const project = page.project;
  if (!project) return;
  const mine = feed.list().filter((job) => job.params && job.params.project === project.id);
  page.shotJobs.clear();
  for (const job of mine.filter((j) => j.kind === "storyboard-shot").reverse()) {
    page.shotJobs.set(job.params.shot, job); // oldest first, so the newest stays
  }
  const before = page.exportJob;
  page.exportJob = mine.find((job) => job.kind === "storyboard-export") || null;
  if (before && ACTIVE.has(before.status) && page.exportJob && page.exportJob.id === before.id
      && page.exportJob.status === "SUCCESS") {
    page.view = "video"; // the export just made: show it
    stopSlides();
  }
  const finished = mine.filter((job) => !ACTIVE.has(job.status)).map((job) => `${job.id}:${job.status}`).join();
  const changed = page.finished && finished !== page.finished;
  page.finished = finished || "-";
  if (changed) refresh();
  else if (!$("project").hidden) {
    renderShots();
    renderExport();
  }
}

// -- export ----------------------------------------------------------------------------------------------

function renderExport() {
  const project = page.project;
  const job = page.exportJob;
  const running = Boolean(job && ACTIVE.has(job.status));
  const music = $("export-music");
  if (!project.music) music.checked = false;
  else if (music.disabled) music.checked = true; // music was just chosen
  music.disabled = !project.music;
  $("export-music-name").textContent = project.music ? `(${musicName(project.music)})` : "(none chosen: Edit details)";
  $("export").disabled = running || project.shots.length === 0;
  $("export").textContent = running ? "Exporting…" : "Export";
  const cancel = $("export-cancel");
  cancel.hidden = !running;
  cancel.disabled = Boolean(job && job.cancel_requested);
  cancel.textContent = job && job.cancel_requested ? "Cancelling…" : "Cancel";
  const box = $("export-progress-box");
  const ended = job && !running && job.status !== "SUCCESS";
  box.hidden = !running && !ended;
  const message = $("export-message");
  if (running) {
    showProgress($("export-progress"), $("export-percent"), job);
    message.textContent = job.message || "Waiting for the encoder…";
    message.className = "small muted";
  } else if (ended) {
    $("export-progress").value = 0;
    $("export-percent").textContent = "";
    message.textContent = job.status === "CANCELLED" ? "Export cancelled: no video was written."
      : job.error || `Export ${job.status.toLowerCase()}.`;
    message.className = job.status === "CANCELLED" ? "small muted" : "small error-text";
  }
  const made = project.export;
  const done = $("export-done");
  done.hidden = running || !made || !made.url;
  if (!done.hidden) {
    $("export-status").textContent = "Exported.";
    $("export-facts").textContent = `${made.width}×${made.height}, ${seconds(made.duration)}, `
      + `${new Date(made.finished * 1000).toLocaleString()}`;
    $("download").href = `${made.url}?v=${made.finished}`;
    $("download").setAttribute("download", basename(made.path));
    $("download-srt").hidden = !made.subtitles_url;
    if (made.subtitles_url) $("download-srt").href = made.subtitles_url;
    $("export-path").textContent = made.path;
  }
}

async function startExport(event) {
  event.preventDefault();
  const exportForm = $("export-form");
  clearErrors(exportForm);
  const f = exportForm.elements;
  const body = { crossfade: Number(f.crossfade.value), burn_subtitles: f.burn_subtitles.checked,
    music: f.music.checked && !f.music.disabled };
  try {
    const { job } = await api(`/api/storyboards/${page.project.id}/export`, { method: "POST", body });
    page.exportJob = { id: job, status: "PENDING", params: { project: page.project.id }, progress: null };
    renderExport();
    await jobs.refresh();
  } catch (error) {
    showError(exportForm, error);
  }
}

async function cancelExport() {
  if (!page.exportJob) return;
  try {
    const { job } = await api(`/api/jobs/${page.exportJob.id}/cancel`, { method: "POST" });
    jobs.put(job);
  } catch (error) {
    reportError(error);
  }
}

async function openFolder() {
  try {
    const opened = await api(`/api/storyboards/${page.project.id}/open`, { method: "POST" });
    if (opened.opened) toast(`Opened ${opened.path}`, "success");
    else toast(`Could not ask the desktop to open the folder; it is ${opened.path}`, "error");
  } catch (error) {
    reportError(error);
  }
}

// -- preview: the exported video, or the shots one after another with their narration ----------------

const slides = { timer: null, index: -1, playing: false };

function renderPreview() {
  const made = page.project.export;
  const url = made && made.url ? `${made.url}?v=${made.finished}` : null;
  const video = $("preview-video");
  if (!page.view || (page.view === "video" && !url)) page.view = url ? "video" : "slides";
  $("preview-video-tab").disabled = !url;
  if (url && video.dataset.src !== url) {
    video.dataset.src = url;
    video.src = url;
  } else if (!url && video.dataset.src) {
    delete video.dataset.src;
    video.removeAttribute("src");
    video.load();
  }
  for (const tab of document.querySelectorAll(".sb-tabs [role=tab]")) {
    const on = tab.dataset.view === page.view;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.classList.toggle("selected", on);
  }
  video.hidden = page.view !== "video";
  $("slideshow").hidden = page.view !== "slides";
  $("slide-controls").hidden = page.view !== "slides";
  screenAspect();
  if (page.view === "slides" && !slides.playing) showSlide(Math.max(0, slides.index));
}

function screenAspect() {
  $("preview-screen").dataset.aspect = page.project.aspect;
}

function drawn() {
  return page.project.shots.filter((s) => s.image);
}

function showSlide(index) {
  const shots = drawn();
  const image = $("slide-image");
  const shot = shots[index];
  slides.index = shot ? index : -1;
  image.hidden = !shot;
  $("slide-empty").hidden = Boolean(shot);
  $("slide-caption").textContent = shot ? shot.subtitle || "" : "";
  $("slide-position").textContent = shot ? `Shot ${shot.position + 1} of ${page.project.shots.length}` : "";
  $("slide-play").disabled = shots.length === 0;
  if (shot) {
    image.src = fileUrl(shot.image, `${shot.job_id || 0}-${shot.status}`);
    image.alt = `Shot ${shot.position + 1}`;
  }
  return shot;
}

function playSlide(index) {
  const shot = showSlide(index);
  const audio = $("slide-audio");
  if (!shot) return stopSlides();
  if (shot.audio) {
    audio.src = fileUrl(shot.audio, `${shot.job_id || 0}`);
    audio.play().catch(() => {});
  } else {
    audio.pause();
  }
  slides.timer = setTimeout(() => playSlide(index + 1), shot.duration * 1000);
  return null;
}

function stopSlides() {
  clearTimeout(slides.timer);
  slides.timer = null;
  slides.playing = false;
  $("slide-audio").pause();
  $("slide-play").textContent = "▶ Play shots";
}

$("slide-play").addEventListener("click", () => {
  if (slides.playing) return stopSlides();
  slides.playing = true;
  $("slide-play").textContent = "■ Stop";
  playSlide(0);
  return null;
});

document.querySelector(".sb-tabs").addEventListener("click", (event) => {
  const tab = event.target.closest("[role=tab]");
  if (!tab || tab.disabled) return;
  page.view = tab.dataset.view;
  if (page.view === "video") stopSlides();
  else $("preview-video").pause();
  renderPreview();
});

// -- wiring -----------------------------------------------------------------------------------------------

for (const id of ["new-project", "start-project"]) $(id).addEventListener("click", () => openForm("new"));
$("project-edit").addEventListener("click", () => openForm("edit"));
$("project-form-close").addEventListener("click", closeForm);
form.addEventListener("submit", saveForm);
form.elements.music_file.addEventListener("change", chooseMusic);
$("music-clear").addEventListener("click", () => {
  page.music = null;
  showMusic(null);
});

$("project-delete").addEventListener("click", async () => {
  const project = page.project;
  const ok = await confirmDialog({ title: `Delete “${project.title}”?`,
    text: "Its shots, pictures, narration and exported videos are deleted from this computer.", ok: "Delete" });
  if (!ok) return;
  try {
    await api(`/api/storyboards/${project.id}`, { method: "DELETE" });
    toast(`Deleted “${project.title}”.`, "success");
    page.project = null;
    history.pushState({}, "", projectUrl(null));
    await loadProjects();
    render();
  } catch (error) {
    reportError(error);
  }
});

$("write-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const writeForm = $("write-form");
  clearErrors(writeForm);
  const count = Number(writeForm.elements.shots.value);
  const button = $("write-shots");
  const status = $("write-status");
  button.disabled = true;
  status.textContent = "The language model is writing the shots…";
  try {
    page.project = await api(`/api/storyboards/${page.project.id}/write`, { method: "POST", body: { shots: count } });
    page.edits += 1;
    const at = page.edits;
    render();
    status.textContent = "";
    undoToast(`Wrote ${page.project.shots.length} shots.`, async () => {
      if (page.edits !== at) throw new Error("The storyboard changed since; use the Undo button above the shots.");
      await undo();
    });
  } catch (error) {
    status.textContent = "";
    showError(writeForm, error);
  } finally {
    button.disabled = false;
  }
});

$("add-shot-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const addForm = $("add-shot-form");
  clearErrors(addForm);
  const f = addForm.elements;
  const body = { prompt: f.prompt.value, narration: f.narration.value };
  if (f.duration.value !== "") body.duration = Number(f.duration.value);
  try {
    await api(`/api/storyboards/${page.project.id}/shots`, { method: "POST", body });
    page.edits += 1;
    addForm.reset();
    await refresh();
    f.prompt.focus();
  } catch (error) {
    showError(addForm, error);
  }
});

$("undo-edit").addEventListener("click", () => undo().catch(reportError));
$("render-all").addEventListener("click", (event) => renderShotsNow({}, event.currentTarget));
$("export-form").addEventListener("submit", startExport);
$("export-cancel").addEventListener("click", cancelExport);
$("open-folder").addEventListener("click", openFolder);

$("project-list").addEventListener("click", (event) => {
  const link = event.target.closest("[data-testid=project-link]");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  openProject(Number(link.dataset.id));
});

window.addEventListener("popstate", () => {
  const id = Number(new URLSearchParams(location.search).get("project"));
  if (id) openProject(id, { push: false });
  else {
    page.project = null;
    closeForm();
    renderProjects();
  }
});

async function start() {
  try {
    await loadProjects();
  } catch (error) {
    reportError(error);
  }
  const wanted = Number(new URLSearchParams(location.search).get("project"));
  const id = wanted || (page.projects[0] && page.projects[0].id);
  if (id) await openProject(id, { push: false });
  else await openForm("new");
  if (id && !wanted) history.replaceState({ project: id }, "", projectUrl(id));
  jobs.subscribe(watchJobs);
}

start();
