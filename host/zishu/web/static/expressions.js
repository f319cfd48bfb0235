// The expression calibrator: preview each expression (and motion) on the live avatar, map each
// emotion tag to an expression/motion, save the map (with Undo).
import { $, api, el, idPath, reportError, toast, undoToast } from "./app.js";
import { mountAvatar } from "./avatar.js";

const root = $("calibrator");
const id = root.dataset.id;
const path = `/api/avatar/${idPath(id)}`;
let info = null;
let avatar = null;

function sameTarget(a, b) {
  return (a.expression || null) === (b.expression || null) && (a.motion || null) === (b.motion || null);
}

async function preview(expression, motion) {
  if (!avatar) return;
  const shown = await avatar.express(expression || null);
  if (motion) await avatar.motion(motion);
  $("current-expression").textContent = shown ? expression || "neutral" : `${expression} (not in this avatar)`;
}

function options(select, names, chosen, noneLabel) {
  select.replaceChildren(el("option", { value: "" }, noneLabel));
  for (const name of names) select.append(el("option", { value: name }, name));
  if (chosen && !names.includes(chosen)) select.append(el("option", { value: chosen }, `${chosen} (not in this avatar)`));
  select.value = chosen || "";
}

function renderLists() {
  const list = $("expression-list");
  list.replaceChildren(...info.expressions.map((name) => el("li", { "data-testid": "expression", "data-name": name },
    el("span", { class: "mono" }, name), " ",
    el("button", { type: "button", class: "ghost", "data-testid": "preview", "data-name": name }, "Preview"))));
  if (!info.expressions.length) list.append(el("li", { class: "muted" }, "This avatar has no expressions."));
  const motions = info.motions || [];
  $("motion-section").hidden = !motions.length;
  $("motion-list").replaceChildren(...motions.map((group) => el("li", { "data-testid": "motion", "data-name": group },
    el("span", { class: "mono" }, group), " ",
    el("button", { type: "button", class: "ghost", "data-testid": "play-motion", "data-name": group }, "Play"))));
}

function renderRows(targets) {
  const motions = info.motions || [];
  $("motion-column").hidden = !motions.length;
  $("emotion-rows").replaceChildren(...info.tags.map((tag) => {
    const target = targets[tag] || {};
    const expression = el("select", { "data-testid": "emotion-expression", "aria-label": `Expression for ${tag}` });
    options(expression, info.expressions, target.expression, "— none —");
    const motion = el("select", { "data-testid": "emotion-motion", "aria-label": `Motion for ${tag}` });
    options(motion, motions, target.motion, "— none —");
    const row = el("tr", { "data-testid": "emotion-row", "data-tag": tag },
      el("td", { class: "mono" }, `[${tag}]`, " ", el("span", { class: "badge", "data-testid": "calibrated", hidden: true }, "changed")),
      el("td", {}, expression),
      el("td", { hidden: !motions.length }, motion),
      el("td", { class: "actions" }, el("button", { type: "button", class: "ghost", "data-testid": "try-emotion" }, "Try")));
    markChanged(row);
    return row;
  }));
}

function rowTarget(row) {
  return {
    expression: row.querySelector('[data-testid="emotion-expression"]').value || null,
    motion: row.querySelector('[data-testid="emotion-motion"]').value || null,
  };
}

function markChanged(row) {
  const defaults = info.defaults[row.dataset.tag] || {};
  row.querySelector('[data-testid="calibrated"]').hidden = sameTarget(rowTarget(row), defaults);
}

/** The calibration to save: each row that differs from the character's default, and saved
 * entries for tags this page does not list (kept as they are). */
function collect() {
  const mapping = {};
  for (const [tag, target] of Object.entries(info.calibration || {})) {
    if (!info.tags.includes(tag)) mapping[tag] = target;
  }
  for (const row of root.querySelectorAll('[data-testid="emotion-row"]')) {
    const target = rowTarget(row);
    if (!sameTarget(target, info.defaults[row.dataset.tag] || {})) mapping[row.dataset.tag] = target;
  }
  return mapping;
}

function show(next) {
  info = next;
  renderLists();
  renderRows(info.emotions);
}

async function save(mapping) {
  return api(`${path}/emotions`, { method: "PUT", body: mapping });
}

root.addEventListener("click", async (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  try {
    const testid = button.dataset.testid;
    if (testid === "preview") await preview(button.dataset.name, null);
    else if (testid === "play-motion") await avatar.motion(button.dataset.name);
    else if (testid === "preview-neutral") await preview(null, null);
    else if (testid === "try-emotion") {
      const target = rowTarget(button.closest("tr"));
      await preview(target.expression, target.motion);
    } else if (testid === "reset-defaults") {
      renderRows(info.defaults);
      toast("The character's defaults are shown; Save to keep them.");
    } else if (testid === "save-emotions") {
      button.disabled = true;
      try {
        const saved = await save(collect());
        const previous = saved.previous || {};
        show(saved);
        undoToast(`Saved ${info.name}'s emotion map.`, async () => {
          show(await save(previous));
          toast("Restored the previous emotion map.", "success");
        });
      } finally {
        button.disabled = false;
      }
    }
  } catch (error) {
    reportError(error);
  }
});

root.addEventListener("change", (event) => {
  const row = event.target.closest('[data-testid="emotion-row"]');
  if (row) markChanged(row);
});

try {
  info = await api(path);
  show(info);
  avatar = await mountAvatar($("avatar"), info);
  root.dataset.ready = "true";
} catch (error) {
  reportError(error);
}
