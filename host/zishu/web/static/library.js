// Library: open a version's folder, uninstall a version (after asking), keep the totals right.
// Your own characters (local/…) go, every version, to the Characters trash, with Undo.
import { $, api, confirmDialog, formatBytes, idPath, reportError, toast, undoToast } from "./app.js";

const list = $("library-list");

function sizeOf(root) {
  return [...root.querySelectorAll('[data-testid="library-version"]')].reduce((sum, row) => sum + Number(row.dataset.size), 0);
}

function updateTotals(item) {
  if (item.isConnected) $("library-item-size", item).textContent = formatBytes(sizeOf(item));
  const count = list.querySelectorAll('[data-testid="library-item"]').length;
  $("library-count").textContent = String(count);
  $("library-size").textContent = formatBytes(sizeOf(list));
  $("library-empty").hidden = count > 0;
}

async function openFolder(id, version) {
  const { path, opened } = await api(`/api/library/${idPath(id)}/open?version=${encodeURIComponent(version)}`,
    { method: "POST" });
  toast(opened ? `Opened ${path}` : `The files are in ${path}`);
}

async function uninstallOwn(item) {
  const id = item.dataset.id;
  const sure = await confirmDialog({ title: `Uninstall ${id}?`,
    text: "This is your own character: it goes to the Characters trash with every version, and Undo brings it back.",
    ok: "Move to trash" });
  if (!sure) return;
  await api(`/api/library/${idPath(id)}`, { method: "DELETE" });
  const place = { parent: item.parentNode, next: item.nextSibling };
  item.remove();
  updateTotals(item);
  undoToast(`${id} is in the Characters trash.`, async () => {
    await api(`/api/characters/${idPath(id)}/restore`, { method: "POST" });
    place.parent.insertBefore(item, place.next);
    updateTotals(item);
    toast(`${id} is back.`, "success");
  });
}

async function uninstall(item, row) {
  const id = item.dataset.id;
  if (item.dataset.own === "true") {
    await uninstallOwn(item);
    return;
  }
  const version = row.dataset.version;
  const sure = await confirmDialog({ title: `Uninstall ${id} ${version}?`,
    text: "Its files are deleted from this computer. You can install it again from Discover.", ok: "Uninstall" });
  if (!sure) return;
  await api(`/api/library/${idPath(id)}?version=${encodeURIComponent(version)}`, { method: "DELETE" });
  row.remove();
  if (!item.querySelector('[data-testid="library-version"]')) item.remove();
  updateTotals(item);
  toast(`Uninstalled ${id} ${version}.`, "success");
}

list.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const item = button.closest('[data-testid="library-item"]');
  const row = button.closest('[data-testid="library-version"]');
  button.disabled = true;
  try {
    if (button.dataset.action === "open") await openFolder(item.dataset.id, row.dataset.version);
    else await uninstall(item, row);
  } catch (error) {
    reportError(error);
  } finally {
    button.disabled = false;
  }
});
