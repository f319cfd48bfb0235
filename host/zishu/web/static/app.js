// Shared by every page: the API client, toasts, the confirm dialog, formatting, the live job feed,
// the theme toggle and the Jobs badge in the sidebar.

export class ApiError extends Error {
  /** ``install``: the catalog id whose install makes the request work, when the server names one. */
  constructor(code, message, status, install = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.install = install;
  }
}

/** fetch() for the JSON API; a 4xx/5xx answer throws ApiError with the server's message. ``body`` is
 * sent as JSON, a FormData as multipart (file uploads). */
export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError("OFFLINE", `Zishu is not answering (${error.message})`, 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(err.code || `HTTP_${response.status}`, err.message || response.statusText, response.status,
      err.install || null);
  }
  return data;
}

/** "zishu/hero" -> "/api/library/zishu/hero" etc.: ids are owner/name, both parts URL-safe. */
export function idPath(id) {
  return id.split("/").map(encodeURIComponent).join("/");
}

export function $(testid, root = document) {
  return root.querySelector(`[data-testid="${testid}"]`);
}

/** A DOM element: el("a", {href: "/x", class: "card", dataset: {id: 1}}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function toast(message, kind = "info") {
  const close = el("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  const node = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": "toast",
    dataset: { kind } }, el("span", {}, message), close);
  close.addEventListener("click", () => node.remove());
  document.querySelector(".toasts").append(node);
  setTimeout(() => node.remove(), kind === "error" ? 12000 : 6000);
  return node;
}

/** A toast with an Undo button for something that just changed; ``undo`` runs at most once. */
export function undoToast(message, undo) {
  const node = toast(message, "success");
  const button = el("button", { type: "button", class: "ghost toast-undo", "data-testid": "undo" }, "Undo");
  button.addEventListener("click", async () => {
    node.remove();
    try {
      await undo();
    } catch (error) {
      reportError(error);
    }
  }, { once: true });
  node.querySelector(".toast-close").before(button);
  return node;
}

/** An error as a toast; one that installing a catalog resource cures (the API's ``install``) offers
 * its Install button there. */
export function reportError(error) {
  const node = toast(error && error.message ? error.message : String(error), "error");
  const rid = error && error.install;
  if (rid) node.querySelector(".toast-close").before(installButton(rid, "toast-install", () => node.remove()));
  return node;
}

/** ``container`` holding the Install button for ``rid``, or emptied when ``rid`` is null; left as it
 * is while ``rid`` stays the same, so a live re-render keeps the button's state. */
export function showInstallButton(container, rid, testid) {
  if ((container.dataset.install || "") === (rid || "")) return;
  container.dataset.install = rid || "";
  container.replaceChildren(...(rid ? [installButton(rid, testid)] : []));
}

/** "Install <rid>": the Install dialog, then the install job (followed in Jobs); ``started`` runs once
 * it is queued. What a failed request or job names as its cure (the error's or the job's ``install``). */
export function installButton(rid, testid = "install-missing", started = () => {}) {
  const button = el("button", { type: "button", class: "primary install-cure", "data-testid": testid,
    dataset: { install: rid } }, `Install ${rid}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const { installAfterAsking } = await import("./install_dialog.js"); // it imports this module
      const job = await installAfterAsking(rid);
      button.disabled = Boolean(job);
      if (!job) return;
      jobs.put(job);
      toast(`Installing ${rid}: follow it in Jobs.`, "success");
      started(job);
    } catch (failure) {
      button.disabled = false;
      reportError(failure);
    }
  });
  return button;
}

export { formatBytes } from "./sizes.js"; // the mirror of zishu/sizes.py
export { formatDownloadSize } from "./sizes.js"; // "size unknown", "at least …": download_size in zishu/sizes.py

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Ask before something that cannot be undone; resolves true when the user confirms. */
export function confirmDialog({ title, text, ok = "OK" }) {
  const dialog = $("confirm-dialog");
  dialog.querySelector(".confirm-title").textContent = title;
  dialog.querySelector(".confirm-text").textContent = text;
  $("confirm-ok", dialog).textContent = ok;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// -- jobs ------------------------------------------------------------------------------------

export const ACTIVE = new Set(["PENDING", "RUNNING"]);
export const RETRYABLE = new Set(["FAILED", "CANCELLED", "INTERRUPTED"]);
export const STATUS_LABEL = {
  PENDING: "Waiting", RUNNING: "Running", SUCCESS: "Done", FAILED: "Failed",
  CANCELLED: "Cancelled", INTERRUPTED: "Interrupted",
};

/** A job's progress as a whole percent (0-100), or null while it is unknown. */
export function percentOf(job) {
  if (job.status === "SUCCESS") return 100;
  if (job.progress === null || job.progress === undefined) return null;
  return Math.max(0, Math.min(100, Math.floor(job.progress * 100)));
}

/** Show a job's progress on a <progress> (indeterminate while unknown) and its percent text. */
export function showProgress(bar, label, job) {
  bar.dataset.status = job.status; // a failed or cancelled job's bar is drawn in its status colour
  const pct = percentOf(job);
  if (pct === null) {
    bar.removeAttribute("value");
    label.textContent = "";
  } else {
    bar.value = pct;
    label.textContent = `${pct} %`;
  }
}

const STREAM_RETRY_MS = 10_000; // a job stream that failed is tried again after this (polled meanwhile)

/** Every job this page knows, kept current by the server's job stream (or polling when it fails). */
class JobFeed {
  constructor() {
    this.byId = new Map();
    this.queue = "";
    this.listeners = new Set();
    this.started = false;
    this.timer = null;
  }

  subscribe(listener) {
    this.listeners.add(listener);
    if (this.started) listener(this);
    else this.start();
  }

  list() {
    return [...this.byId.values()].sort((a, b) => b.id - a.id);
  }

  put(job) {
    const known = this.byId.get(job.id);
    if (known && known.updated_at > job.updated_at) return;
    this.byId.set(job.id, job);
    this.emit();
  }

  emit() {
    for (const listener of this.listeners) listener(this);
  }

  async refresh() {
    const data = await api("/api/jobs");
    this.byId = new Map(data.jobs.map((job) => [job.id, job]));
    this.queue = data.queue;
    this.emit();
  }

  async start() {
    this.started = true;
    try {
      await this.refresh();
    } catch (error) {
      reportError(error);
    }
    if (!window.EventSource) return this.poll();
    this.listen();
  }

  // Changes pushed by the server's job stream. When the stream fails (every stream slot taken by
  // pages just left, or the app restarting), the list is polled and the stream tried again later.
  listen() {
    const since = Math.max(0, ...[...this.byId.values()].map((job) => job.updated_at || 0));
    const source = new EventSource(`/api/jobs/stream?since=${since}`);
    source.addEventListener("job", (event) => this.put(JSON.parse(event.data)));
    source.addEventListener("open", () => this.stopPolling());
    source.addEventListener("error", () => {
      source.close();
      this.poll();
      setTimeout(() => this.listen(), STREAM_RETRY_MS);
    });
  }

  poll() {
    if (this.timer === null) this.timer = setInterval(() => this.refresh().catch(() => {}), 2000);
  }

  stopPolling() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

export const jobs = new JobFeed();

// -- the shell ---------------------------------------------------------------------------------

function setupThemeToggle() {
  const button = $("theme-toggle");
  const root = document.documentElement;
  const label = () => {
    button.textContent = root.dataset.theme === "dark" ? "☀ Light mode" : "☾ Dark mode";
  };
  label();
  button.addEventListener("click", () => {
    root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
    try {
      localStorage.setItem("zishu-theme", root.dataset.theme);
    } catch (error) {
      /* storage blocked: the choice lasts for this page */
    }
    label();
  });
}

function setupJobsBadge() {
  const badge = $("jobs-badge");
  if (!badge) return;
  jobs.subscribe((feed) => {
    const active = feed.list().filter((job) => ACTIVE.has(job.status)).length;
    badge.textContent = String(active);
    badge.hidden = active === 0;
    badge.title = `${active} job${active === 1 ? "" : "s"} running or waiting`;
  });
}

setupThemeToggle();
setupJobsBadge();
