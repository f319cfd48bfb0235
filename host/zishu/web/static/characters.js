// Characters: the installed characters as cards (talk, edit, pack, publish, delete with undo), card import, and
// opening a package (.zpkg) by the file chooser, drag and drop or a zishu:// link (?package=PATH).
import { $, ApiError, api, confirmDialog, el, formatBytes, idPath, jobs, percentOf, reportError, toast, undoToast }
  from "./app.js";

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
    el("button", { type: "button", "data-action": "pack", "data-testid": "pack" }, "Pack"),
    character.local
      ? el("button", { type: "button", class: "ghost", "data-action": "publish", "data-testid": "publish" }, "Publish")
      : null,
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

// -- publish: a dialog that streams the publish's progress (JSON lines) ------------------------

const publishDialog = $("publish-dialog");
const publishLog = $("publish-log", publishDialog);
const publishBar = $("publish-progress", publishDialog);
const publishResult = $("publish-result", publishDialog);
const publishStart = $("publish-start", publishDialog);

function openPublish(node) {
  publishDialog.dataset.id = node.dataset.id;
  $("publish-title", publishDialog).textContent = `Publish ${$("character-name", node).textContent}`;
  publishLog.replaceChildren();
  publishResult.hidden = true;
  publishBar.hidden = true;
  publishStart.disabled = false;
  publishDialog.showModal();
}

function showPublishEvent(event) {
  if (event.event === "step") {
    if (event.total) {
      publishBar.max = event.total;
      publishBar.value = event.done;
    }
    publishLog.append(el("li", {}, event.message));
  } else if (event.event === "request") {
    publishLog.append(el("li", { class: "muted" }, event.line));
  } else if (event.event === "done") {
    publishBar.hidden = true;
    publishResult.hidden = false;
    publishResult.replaceChildren(event.dry_run
      ? `Dry run: ${publishLog.children.length} lines shown, nothing sent.`
      : el("a", { href: event.pull_request_url, target: "_blank", rel: "noopener",
        "data-testid": "publish-pull-request" }, `Pull request for ${event.id} ${event.version}`));
  } else if (event.event === "error") {
    publishBar.hidden = true;
    publishResult.hidden = false;
    publishResult.replaceChildren(el("span", { class: "error", "data-testid": "publish-error" }, event.message));
  }
  publishLog.lastElementChild?.scrollIntoView({ block: "nearest" });
}

async function publish() {
  const form = $("publish-form", publishDialog);
  if (!form.reportValidity()) return;
  publishStart.disabled = true;
  publishLog.replaceChildren();
  publishResult.hidden = true;
  publishBar.hidden = false;
  publishBar.removeAttribute("value");
  const body = { license: form.elements.license.value.trim(), dry_run: form.elements.dry_run.checked };
  const response = await fetch(`/api/characters/${idPath(publishDialog.dataset.id)}/publish`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    showPublishEvent({ event: "error", message: data?.error?.message || `HTTP ${response.status}` });
    publishStart.disabled = false;
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const lines = pending.split("\n");
    pending = lines.pop();
    lines.filter(Boolean).forEach((line) => showPublishEvent(JSON.parse(line)));
  }
  publishStart.disabled = false;
}

publishStart.addEventListener("click", () => publish().catch(reportError));

list.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action='publish']");
  if (button) openPublish(button.closest('[data-testid="character-card"]'));
});

list.addEventListener("click", async (event) => {
  const packButton = event.target.closest("button[data-action='pack']");
  if (packButton) {
    const node = packButton.closest('[data-testid="character-card"]');
    openPackDialog(node.dataset.id, $("character-name", node).textContent);
    return;
  }
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

// -- packing ---------------------------------------------------------------------------------------

/** Resolve with the job once it ends, showing its progress on ``bar`` (and its message in ``label``). */
function followJob(id, bar, label) {
  return new Promise((resolve) => {
    const listener = (feed) => {
      const job = feed.byId.get(id);
      if (!job) return;
      const pct = percentOf(job);
      if (pct === null) bar.removeAttribute("value");
      else bar.value = pct;
      if (label && job.message) label.textContent = job.message;
      if (!["PENDING", "RUNNING"].includes(job.status)) {
        if (job.status === "SUCCESS") bar.value = 100;
        jobs.listeners.delete(listener);
        resolve(job);
      }
    };
    jobs.subscribe(listener);
  });
}

const packDialog = $("pack-dialog");

function openPackDialog(id, name) {
  $("pack-title", packDialog).textContent = `Pack ${name}`;
  $("pack-status", packDialog).textContent = "";
  $("pack-progress", packDialog).hidden = true;
  $("pack-start", packDialog).disabled = false;
  packDialog.dataset.id = id;
  packDialog.showModal();
}

$("pack-start", packDialog).addEventListener("click", async (event) => {
  event.preventDefault();
  const start = event.currentTarget;
  const bar = $("pack-progress", packDialog);
  const status = $("pack-status", packDialog);
  start.disabled = true;
  bar.hidden = false;
  bar.removeAttribute("value");
  try {
    const { job } = await api(`/api/characters/${idPath(packDialog.dataset.id)}/pack`,
      { method: "POST", body: { mode: $("pack-mode", packDialog).value } });
    const done = await followJob(job.id, bar, status);
    if (done.status !== "SUCCESS") throw new ApiError(done.error_code || done.status, done.error || done.status, 0);
    const result = await api(`/api/jobs/${job.id}`).then((data) => data.job.result);
    status.textContent = `Wrote ${result.path} (${formatBytes(result.size)}).`;
    status.dataset.path = result.path;
  } catch (error) {
    status.textContent = "";
    reportError(error);
  } finally {
    start.disabled = false;
  }
});

// -- opening a package -----------------------------------------------------------------------------

const packageDialog = $("package-dialog");
const packageInput = $("open-package");

function showPlan({ path, plan }) {
  $("package-title", packageDialog).textContent = `Install ${plan.character.name}?`;
  $("package-plan", packageDialog).textContent =
    `${plan.file}: ${plan.mode} package, ${plan.embedded_bytes ? `${formatBytes(plan.embedded_bytes)} inside` : "nothing inside"}, ` +
    `${plan.download_bytes ? `${formatBytes(plan.download_bytes)} to download` : "nothing to download"}. Nothing you edited is replaced: an installed ` +
    "character gets this as a new version, and Undo takes it back.";
  $("package-budget", packageDialog).replaceChildren(...(plan.budget || []).map((line) => el("li", {}, line)));
  $("package-parts", packageDialog).replaceChildren(
    el("li", {}, `${plan.character.id} ${plan.character.version} (character)`),
    ...plan.resources.map((r) => el("li", {}, `${r.id} ${r.version} (${r.kind}, ${r.embedded ? "inside" : "download"})`)));
  $("package-progress", packageDialog).hidden = true;
  $("package-install", packageDialog).disabled = false;
  packageDialog.dataset.path = path;
  packageDialog.showModal();
}

async function openPackageFile(file) {
  if (!file.name.toLowerCase().endsWith(".zpkg")) {
    toast(`${file.name} is not a character package (.zpkg).`, "error");
    return;
  }
  const response = await fetch(`/api/packages?name=${encodeURIComponent(file.name)}`, {
    method: "POST", body: file, headers: { "Content-Type": "application/octet-stream", Accept: "application/json" } });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(err.code || `HTTP_${response.status}`, err.message || response.statusText, response.status);
  }
  showPlan(data);
}

$("package-install", packageDialog).addEventListener("click", async (event) => {
  event.preventDefault();
  const button = event.currentTarget;
  const bar = $("package-progress", packageDialog);
  button.disabled = true;
  bar.hidden = false;
  try {
    const { job } = await api("/api/packages/install", { method: "POST", body: { path: packageDialog.dataset.path } });
    const done = await followJob(job.id, bar);
    if (done.status !== "SUCCESS") throw new ApiError(done.error_code || done.status, done.error || done.status, 0);
    const { character } = (await api(`/api/jobs/${job.id}`)).job.result;
    packageDialog.close();
    await refresh(character.id);
    if (!character.new) {
      toast(`${character.id} ${character.version} is already installed.`, "info");
      return;
    }
    undoToast(`Installed ${character.id} ${character.version}.`, async () => {
      await api("/api/packages/undo", { method: "POST", body: { id: character.id, version: character.version } });
      await refresh();
    });
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});

packageInput.addEventListener("change", async () => {
  const file = packageInput.files[0];
  if (!file) return;
  try {
    await openPackageFile(file);
  } catch (error) {
    reportError(error);
  } finally {
    packageInput.value = "";
  }
});

document.addEventListener("dragover", (event) => {
  if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
});
document.addEventListener("drop", async (event) => {
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (!file) return;
  event.preventDefault();
  try {
    await openPackageFile(file);
  } catch (error) {
    reportError(error);
  }
});

const linked = new URLSearchParams(window.location.search).get("package");
if (linked) {
  api("/api/packages", { method: "POST", body: { path: linked } }).then(showPlan).catch(reportError);
}

const created = new URLSearchParams(window.location.search).get("created");
render(JSON.parse(document.getElementById("characters-data").textContent), created);
if (created) {
  const node = list.querySelector(`[data-id="${CSS.escape(created)}"]`);
  if (node) toast(`Created ${$("character-name", node).textContent}.`, "success");
  history.replaceState(null, "", "/characters");
}
