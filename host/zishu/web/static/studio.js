// The Studio panel: the request form (prompt, style, character, model, LoRAs, size, batch, advanced
// settings, drawing from a gallery picture with a painted mask, a ControlNet guide), Generate with the
// job's live progress and latent previews, Cancel and Retry, a character's picture and expression sheet.
// Errors the server names a field for are shown beside that field. The gallery is studio_gallery.js's.
import {
  $, ACTIVE, RETRYABLE, STATUS_LABEL, api, el, idPath, installButton, jobs, reportError, showProgress, toast,
} from "./app.js";
import { openPicture, refreshGallery, startGallery } from "./studio_gallery.js";
import { editMask, forgetMask } from "./studio_mask.js";

const form = $("studio-form");
const fields = form.elements;
const runs = $("runs");
const runTemplate = document.getElementById("run-template");

let options = {
  schedulers: [], size_multiple: 8, min_side: 64, max_side: 2048, max_batch: 8, default_model: null, starter_model: null,
};
let styles = [];
let characters = [];
let capabilities = null; // null: this app does not say (every action is tried, and its error shown)
let source = null; // the gallery picture drawn from (img2img, inpaint)
let mask = null; // the painted mask's PNG data URL
let control = null; // the ControlNet guide's PNG data URL
const tracked = new Map(); // job id -> its card
const installs = new Map(); // install job id -> what to reload when it is done

// -- what the app offers ------------------------------------------------------------------------------

/** ``{message, install}`` when ``name`` cannot run here, null when it can (or nobody says). */
function capability(name) {
  if (!capabilities) return null;
  const found = capabilities[name] || capabilities[name.replace("_", ".")];
  return found && !found.ok ? found : null;
}

/** A note saying what is missing, with an Install button for the catalog id that cures it; the
 * Studio reloads its models, styles and LoRAs once that install is done. */
function offerInstall({ message, install }) {
  const text = message ? message[0].toUpperCase() + message.slice(1) : "";
  const note = el("div", { class: "row", "data-testid": "capability-note" }, el("span", { class: "grow" }, text));
  if (install) note.append(installButton(install, "install-missing", (job) => installs.set(job.id, install)));
  return note;
}

async function loadCapabilities() {
  const model = fields.model.value;
  try {
    const data = await api(`/api/studio/capabilities${model ? `?model=${encodeURIComponent(model)}` : ""}`);
    capabilities = data.capabilities;
  } catch (error) {
    capabilities = null;
    if (error.status !== 404) reportError(error);
  }
  showSource();
  showControl();
}

function fill(select, items, keep = true) {
  const first = keep ? [select.options[0]] : [];
  select.replaceChildren(...first, ...items);
}

/** Make ``value`` one of the select's choices (a reused request may name one this page does not list). */
function choose(select, value) {
  const wanted = value === null || value === undefined ? "" : String(value);
  if (wanted && ![...select.options].some((o) => o.value === wanted)) select.append(new Option(wanted, wanted));
  select.value = wanted;
}

async function loadStyles() {
  try {
    const data = await api("/api/studio/styles");
    styles = data.styles;
    const chosen = fields.style.value;
    fill(fields.style, styles.map((s) => new Option(s.title || s.name, s.name)));
    choose(fields.style, chosen);
    showStyle();
  } catch (error) {
    reportError(error);
  }
}

async function loadLoras() {
  try {
    const { resources } = await api("/api/library");
    const loras = resources.filter((r) => r.kind === "lora");
    fill($("lora-add"), loras.map((r) => new Option(`${r.name} (${r.id})`, r.id)));
  } catch (error) {
    reportError(error);
  }
}

async function loadOptions() {
  try {
    options = { ...options, ...(await api("/api/studio/options")) };
  } catch (error) {
    reportError(error);
  }
  // with no image model installed, the Model field says so at once and offers the starter model
  const missing = $("model-missing");
  missing.hidden = Boolean(options.default_model) || !options.starter_model;
  missing.replaceChildren(...(missing.hidden ? [] : [
    offerInstall({ message: "no image model is installed yet", install: options.starter_model })]));
}

async function loadModels() {
  try {
    const { engines } = await api("/api/engines");
    const models = [...new Set(engines.filter((e) => e.kind === "image").flatMap((e) => e.models))];
    const chosen = fields.model.value;
    fill(fields.model, models.map((m) => new Option(m, m)));
    fields.model.options[0].textContent = options.default_model ? `Default (${options.default_model})` : "Default";
    choose(fields.model, chosen);
  } catch (error) {
    reportError(error);
  }
}

/** Square, portrait and landscape sizes, multiples of the model's step within its limits. */
function sizePresets() {
  const m = options.size_multiple;
  const round = (n) => Math.round(n / m) * m;
  const within = (w, h) => Math.min(w, h) >= options.min_side && Math.max(w, h) <= options.max_side;
  const sizes = [];
  for (const side of [512, 768, 1024]) {
    const long = round(side * 1.5);
    sizes.push(["Square", side, side], ["Portrait", side, long], ["Landscape", long, side]);
  }
  const select = $("size-preset");
  fill(select, sizes.filter(([, w, h]) => within(w, h)).map(([name, w, h]) => new Option(`${name} ${w}×${h}`, `${w}x${h}`)));
  markPreset();
}

function markPreset() {
  const select = $("size-preset");
  const size = `${fields.width.value}x${fields.height.value}`;
  select.value = [...select.options].some((o) => o.value === size) ? size : "";
}

$("size-preset").addEventListener("change", (event) => {
  if (!event.target.value) return;
  const [width, height] = event.target.value.split("x");
  fields.width.value = width;
  fields.height.value = height;
});
for (const name of ["width", "height"]) {
  fields[name].addEventListener("input", markPreset);
  fields[name].step = String(options.size_multiple);
}

// -- style, character, LoRAs -------------------------------------------------------------------------------

function currentStyle() {
  return styles.find((s) => s.name === fields.style.value) || null;
}

function showStyle() {
  const style = currentStyle();
  const note = $("style-missing");
  const missing = style ? style.missing || [] : [];
  note.replaceChildren(...missing.map((rid) => offerInstall({
    message: `This style uses the LoRA ${rid}, which is not installed.`, install: rid })));
  note.hidden = missing.length === 0;
}

fields.style.addEventListener("change", () => {
  const style = currentStyle();
  if (style) {
    // the style's own settings, shown so what is drawn is what the form says
    if (style.width) fields.width.value = style.width;
    if (style.height) fields.height.value = style.height;
    if (style.steps) fields.steps.value = style.steps;
    if (style.guidance !== null && style.guidance !== undefined) fields.guidance.value = style.guidance;
    if (style.scheduler) choose(fields.scheduler, style.scheduler);
    markPreset();
  }
  showStyle();
});

fields.character.addEventListener("change", () => {
  $("character-actions").hidden = !fields.character.value;
});

function addLora(id, weight = 1) {
  if ([...$("lora-list").children].some((row) => row.dataset.lora === id)) return;
  const slider = el("input", { type: "range", min: "-1", max: "2", step: "0.05", value: String(weight),
    "data-testid": "lora-weight", "aria-label": `Weight of ${id}` });
  const shown = el("output", { class: "mono small" }, Number(weight).toFixed(2));
  slider.addEventListener("input", () => { shown.textContent = Number(slider.value).toFixed(2); });
  const remove = el("button", { type: "button", class: "ghost", "data-testid": "lora-remove",
    "aria-label": `Remove ${id}` }, "×");
  const row = el("li", { class: "row lora-row", "data-testid": "lora-row", dataset: { lora: id } },
    el("span", { class: "grow mono small" }, id), slider, shown, remove);
  remove.addEventListener("click", () => row.remove());
  $("lora-list").append(row);
}

$("lora-add").addEventListener("change", (event) => {
  if (event.target.value) addLora(event.target.value);
  event.target.value = "";
});

fields.batch.addEventListener("input", () => { $("batch-shown").textContent = fields.batch.value; });
fields.strength.addEventListener("input", () => { $("strength-shown").textContent = fields.strength.value; });
fields.model.addEventListener("change", loadCapabilities);

// -- drawing from a gallery picture ----------------------------------------------------------------------

function showSource() {
  const box = $("source");
  box.hidden = source === null;
  if (!source) return;
  $("source-image").src = source.url;
  $("source-mode").textContent = mask
    ? `Inpainting picture #${source.id}: only the painted part is redrawn.`
    : `Drawing from picture #${source.id} (img2img). Paint a mask to redraw only a part.`;
  $("edit-mask").textContent = mask ? "Change the mask" : "Paint a mask";
  const missing = capability(mask ? "inpaint" : "img2img");
  const note = $("source-capability");
  note.replaceChildren(...(missing ? [offerInstall(missing)] : []));
  note.hidden = !missing;
}

function setSource(image) {
  if (!source || source.id !== image.id) {
    forgetMask();
    mask = null;
  }
  source = image;
  fields.width.value = image.width;
  fields.height.value = image.height;
  markPreset();
  showSource();
}

function paintMask() {
  editMask(source, (painted) => {
    mask = painted;
    showSource();
  });
}

async function editPicture(image) {
  try {
    const { request } = await api(`/api/studio/gallery/${image.id}/reuse`);
    fillForm({ ...request, seed: undefined, init_image: undefined, mask: undefined, control: undefined });
  } catch (error) {
    reportError(error);
  }
  setSource(image);
  paintMask();
}

$("edit-mask").addEventListener("click", paintMask);
$("clear-source").addEventListener("click", () => {
  source = null;
  mask = null;
  forgetMask();
  showSource();
});

// -- a ControlNet guide -------------------------------------------------------------------------------------

function showControl() {
  const kind = $("control-kind").value;
  const missing = capability(`controlnet_${kind}`);
  const note = $("control-capability");
  note.replaceChildren(...(missing ? [offerInstall(missing)] : []));
  note.hidden = !missing;
  $("control-preview").hidden = control === null;
  $("control-clear").hidden = control === null;
  if (control) $("control-preview").src = control;
}

/** The guide picture scaled to fit the requested size (a small PNG rather than the whole upload). */
async function guide(file) {
  const bitmap = await createImageBitmap(file);
  const width = Number(fields.width.value) || 512;
  const height = Number(fields.height.value) || 512;
  const scale = Math.min(1, width / bitmap.width, height / bitmap.height);
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/png");
}

$("control-file").addEventListener("change", async (event) => {
  const [file] = event.target.files;
  event.target.value = "";
  if (!file) return;
  try {
    control = await guide(file);
  } catch (error) {
    toast(`${file.name}: this is not a picture the browser can read (${error.message})`, "error");
  }
  showControl();
});
$("control-clear").addEventListener("click", () => {
  control = null;
  showControl();
});
$("control-kind").addEventListener("change", showControl);
$("control-weight").addEventListener("input", () => {
  $("control-weight-shown").textContent = $("control-weight").value;
});

// -- the request ------------------------------------------------------------------------------------------

function number(value) {
  return value === "" ? undefined : Number(value);
}

/** The form as a studio request (``zishu.studio.requests.ImageRequest``): empty fields are left to the
 * style and the model. */
function request() {
  const body = { prompt: fields.prompt.value };
  for (const name of ["negative_prompt", "style", "character", "model", "scheduler"]) {
    if (fields[name].value) body[name] = fields[name].value;
  }
  for (const name of ["width", "height", "batch", "steps", "guidance", "seed"]) {
    const value = number(fields[name].value.trim());
    if (value !== undefined) body[name] = value;
  }
  const loras = [...$("lora-list").children].map((row) => ({ id: row.dataset.lora,
    weight: Number(row.querySelector("input").value) }));
  if (loras.length) body.loras = loras;
  if (source) {
    body.init_image = String(source.id);
    body.strength = Number(fields.strength.value);
    if (mask) body.mask = mask;
  }
  if (control) {
    body.control = { type: $("control-kind").value, image: control, weight: Number($("control-weight").value) };
  }
  return body;
}

/** Fill the form from a request ("Reuse settings" hands back the one that made a picture). */
function fillForm(req) {
  fields.prompt.value = req.prompt || "";
  fields.negative_prompt.value = req.negative_prompt || "";
  choose(fields.style, req.style);
  choose(fields.character, req.character);
  choose(fields.model, req.model);
  choose(fields.scheduler, req.scheduler);
  for (const name of ["width", "height"]) if (req[name]) fields[name].value = req[name];
  for (const name of ["steps", "guidance", "seed"]) {
    fields[name].value = req[name] === null || req[name] === undefined ? "" : req[name];
  }
  if (["steps", "guidance", "seed", "scheduler"].some((name) => fields[name].value)) $("advanced").open = true;
  fields.batch.value = req.batch || 1;
  $("batch-shown").textContent = fields.batch.value;
  $("lora-list").replaceChildren();
  for (const lora of req.loras || []) addLora(lora.id, lora.weight ?? 1);
  if (req.control && req.control.image && req.control.image.startsWith("data:")) {
    control = req.control.image;
    $("control-kind").value = req.control.type;
    $("control-weight").value = req.control.weight ?? 1;
  }
  if (req.strength !== undefined && req.strength !== null) fields.strength.value = req.strength;
  $("strength-shown").textContent = fields.strength.value;
  $("character-actions").hidden = !fields.character.value;
  markPreset();
  showStyle();
  showControl();
  clearErrors();
}

function clearErrors() {
  for (const node of form.querySelectorAll("[data-error-for]")) node.replaceChildren();
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

/** Show a refused request beside the field its message names ("width: must be a multiple of 8"). */
function showError(error) {
  const match = /^([a-z_]+)(?:\.[\w.]+)?: (.*)$/s.exec(error.message || "");
  const field = match && form.querySelector(`[data-error-for="${match[1]}"]`) ? match[1] : "request";
  const where = form.querySelector(`[data-error-for="${field}"]`);
  where.replaceChildren(el("span", {}, field === "request" ? error.message : match[2]));
  const offered = [...form.querySelectorAll("[data-testid=install-missing]")]
    .some((button) => button.dataset.install === error.install && button.checkVisibility());
  if (error.install && !offered) where.append(offerInstall({ message: "", install: error.install }));
  const input = fields[field];
  if (input && input.setAttribute) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } else {
    where.scrollIntoView({ block: "nearest" });
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const button = $("generate");
  button.disabled = true;
  try {
    const { job } = await api("/api/studio/images", { method: "POST", body: request() });
    track(job);
  } catch (error) {
    if (error.status >= 400 && error.status < 500) showError(error);
    else reportError(error);
  } finally {
    button.disabled = false;
  }
});

// -- a character's picture and expression sheet ----------------------------------------------------------------

function characterBody() {
  const body = {};
  if (fields.prompt.value.trim()) body.prompt = fields.prompt.value;
  if (fields.style.value) body.style = fields.style.value;
  return body;
}

$("draw-character").addEventListener("click", async () => {
  const rid = fields.character.value;
  clearErrors();
  try {
    const { job } = await api(`/api/studio/characters/${idPath(rid)}/draw`, { method: "POST", body: characterBody() });
    track(job);
  } catch (error) {
    if (error.status >= 400 && error.status < 500) showError(error);
    else reportError(error);
  }
});

$("expression-sheet").addEventListener("click", async () => {
  const rid = fields.character.value;
  clearErrors();
  try {
    const data = await api(`/api/studio/characters/${idPath(rid)}/sheet`, { method: "POST", body: characterBody() });
    sheetCard(rid, data.jobs);
  } catch (error) {
    if (error.status >= 400 && error.status < 500) showError(error);
    else reportError(error);
  }
});

/** The sheet's jobs, each with its card, and "Use as avatar" once every emotion is drawn. */
function sheetCard(rid, sheetJobs) {
  const entries = Object.entries(sheetJobs);
  const use = el("button", { type: "button", class: "primary", "data-testid": "sheet-use", disabled: true },
    "Use the sheet as avatar");
  const tiles = el("div", { class: "sheet-runs" });
  const card = el("div", { class: "card run stack", "data-testid": "sheet" },
    el("div", { class: "row spread" }, el("span", { class: "job-title" }, `Expression sheet for ${rid}`), use), tiles);
  runs.prepend(card);
  for (const [emotion, job] of entries) {
    track(job, tiles);
    tracked.get(job.id).dataset.emotion = emotion;
    showRun(jobs.byId.get(job.id) || job);
  }
  const ready = () => entries.every(([, job]) => (jobs.byId.get(job.id) || job).status === "SUCCESS");
  jobs.subscribe(() => { use.disabled = !ready(); });
  use.addEventListener("click", async () => {
    const images = {};
    for (const [emotion, job] of entries) {
      const done = jobs.byId.get(job.id);
      const first = done && done.result && done.result.images && done.result.images[0];
      if (first) images[emotion] = first.id;
    }
    try {
      await api(`/api/studio/characters/${idPath(rid)}/avatar`, { method: "POST", body: { images } });
      toast(`${rid} shows the new expression sheet.`, "success");
    } catch (error) {
      reportError(error);
    }
  });
}

// -- runs: a job's progress, previews, pictures, Cancel and Retry ----------------------------------------------

/** Show ``job`` as a card (in ``into``, else first among the runs) that follows it. */
function track(job, into = null) {
  let card = tracked.get(job.id);
  if (!card) {
    card = runTemplate.content.firstElementChild.cloneNode(true);
    card.dataset.jobId = job.id;
    tracked.set(job.id, card);
    runs.prepend(card);
  }
  if (into && card.parentElement !== into) into.append(card); // the job stream may have shown it first
  jobs.put(job);
  showRun(jobs.byId.get(job.id) || job);
}

function showRun(job) {
  const card = tracked.get(job.id);
  if (!card) return;
  const before = card.dataset.status;
  card.dataset.status = job.status;
  const asked = job.params || {};
  let title = job.title || `Picture job #${job.id}`;
  if (!asked.prompt && asked.character) title = `Draw ${asked.character}`; // the character says what to draw
  $("run-title", card).textContent = card.dataset.emotion || title; // a sheet's tile: its emotion
  $("run-title", card).title = title;
  const badge = $("run-status", card);
  badge.textContent = STATUS_LABEL[job.status] || job.status;
  badge.className = `badge status-${job.status.toLowerCase()}`;
  showProgress($("run-progress", card), $("run-percent", card), job);
  const step = job.status === "RUNNING" && job.total && job.done ? ` · step ${Math.round(job.done)} of ${job.total}` : "";
  $("run-message", card).textContent = (job.message || "") + step;
  $("run-error", card).textContent = job.error || "";
  const cancel = $("run-cancel", card);
  cancel.hidden = !ACTIVE.has(job.status);
  cancel.disabled = Boolean(job.cancel_requested);
  cancel.textContent = job.cancel_requested ? "Cancelling…" : "Cancel";
  $("run-retry", card).hidden = !RETRYABLE.has(job.status);
  $("run-dismiss", card).hidden = ACTIVE.has(job.status);
  const pictures = $("run-pictures", card);
  const preview = job.extra && job.extra.preview;
  if (job.status === "SUCCESS") {
    const images = (job.result && job.result.images) || [];
    if (pictures.dataset.shows !== "result") {
      pictures.dataset.shows = "result";
      pictures.replaceChildren(...images.map((image) => el("img", { src: image.url, alt: image.prompt,
        class: image.blocked ? "blurred" : null, "data-testid": "run-picture", dataset: { imageId: image.id },
        title: image.blocked ? `Blocked: ${image.blocked_reason}` : image.prompt })));
    }
    if (before !== "SUCCESS") refreshGallery();
  } else if (preview && job.status === "RUNNING") {
    let img = $("run-preview", pictures);
    if (!img) {
      img = el("img", { alt: "The picture so far", "data-testid": "run-preview" });
      pictures.replaceChildren(img);
    }
    pictures.dataset.shows = "preview";
    if (img.getAttribute("src") !== preview) img.src = preview;
    img.dataset.step = job.extra.step ?? "";
  } else if (pictures.dataset.shows) { // waiting again, or stopped: a stale preview would mislead
    pictures.dataset.shows = "";
    pictures.replaceChildren();
  }
}

runs.addEventListener("click", async (event) => {
  const picture = event.target.closest("img[data-image-id]");
  if (picture) {
    openPicture(picture.dataset.imageId);
    return;
  }
  const button = event.target.closest("button[data-action]");
  const card = event.target.closest("[data-job-id]");
  if (!button || !card) return;
  const id = Number(card.dataset.jobId);
  if (button.dataset.action === "dismiss") {
    tracked.delete(id);
    card.remove();
    return;
  }
  try {
    const { job } = await api(`/api/jobs/${id}/${button.dataset.action}`, { method: "POST" });
    jobs.put(job);
    showRun(job);
  } catch (error) {
    reportError(error);
  }
});

jobs.subscribe((feed) => {
  // every drawing in progress shows here: from before this page was opened, or queued by another tool
  for (const job of feed.list().reverse()) {
    if (job.kind === "image" && ACTIVE.has(job.status) && !tracked.has(job.id)) track(job);
  }
  for (const id of tracked.keys()) {
    const job = feed.byId.get(id);
    if (job) showRun(job);
  }
  for (const [id, rid] of [...installs]) {
    const job = feed.byId.get(id);
    if (job && job.status === "SUCCESS") {
      installs.delete(id);
      toast(`${rid} is installed.`, "success");
      loadOptions().then(() => Promise.all([loadStyles(), loadLoras(), loadModels()])).then(loadCapabilities);
    } else if (job && RETRYABLE.has(job.status)) {
      installs.delete(id);
    }
  }
});

// -- start ------------------------------------------------------------------------------------------------------

async function start() {
  await loadOptions();
  fill(fields.scheduler, options.schedulers.map((s) => new Option(s, s)));
  fields.batch.max = String(options.max_batch);
  for (const name of ["width", "height"]) {
    fields[name].min = String(options.min_side);
    fields[name].max = String(options.max_side);
    fields[name].step = String(options.size_multiple);
  }
  sizePresets();
  try {
    characters = (await api("/api/characters")).characters;
  } catch (error) {
    reportError(error);
  }
  fill(fields.character, characters.map((c) => new Option(`${c.name} (${c.id})`, c.id)));
  const wanted = new URLSearchParams(location.search).get("character");
  if (wanted) choose(fields.character, wanted);
  $("character-actions").hidden = !fields.character.value;
  await Promise.all([loadStyles(), loadLoras(), loadModels()]);
  await loadCapabilities();
  await startGallery({ reuse: fillForm, edit: editPicture, capability, offerInstall }, characters);
  form.dataset.ready = "true";
}

start();
