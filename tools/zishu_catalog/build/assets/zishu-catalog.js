// Catalog search over the compact index (api/v1/index.json), in the browser, with no server.
// Any <form class="zc-search" data-root="…"> on a page gets live results; the search page
// also reads ?q= so the home page's box can send people there.
(function () {
  "use strict";
  let indexPromise = null;

  function loadIndex(root) {
    if (!indexPromise) {
      indexPromise = fetch(root + "api/v1/index.json")
        .then((r) => { if (!r.ok) throw new Error("index: HTTP " + r.status); return r.json(); })
        .then((data) => data.resources.map((e) => Object.assign(e, {
          _name: e.name.toLowerCase(), _id: e.id.toLowerCase(), _sum: e.summary.toLowerCase(),
        })));
    }
    return indexPromise;
  }

  // "kind:model tag:anime qwen" -> filters + free words
  function parse(q) {
    const filters = {}, words = [];
    for (const part of q.toLowerCase().split(/\s+/).filter(Boolean)) {
      const m = part.match(/^(kind|tag|license|base):(.+)$/);
      if (m) filters[m[1]] = m[2]; else words.push(part);
    }
    return { filters, words };
  }

  function score(e, words) {
    let s = 0;
    for (const w of words) {
      if (e._name === w) s += 100;
      else if (e._name.startsWith(w)) s += 50;
      else if (e._name.includes(w)) s += 30;
      else if (e.tags.includes(w)) s += 25;
      else if (e._id.includes(w)) s += 20;
      else if (e._sum.includes(w)) s += 10;
      else return 0;
    }
    return s;
  }

  function search(entries, q) {
    const { filters, words } = parse(q);
    const out = [];
    for (const e of entries) {
      if (filters.kind && e.kind !== filters.kind) continue;
      if (filters.tag && !e.tags.includes(filters.tag)) continue;
      if (filters.license && e.license.toLowerCase() !== filters.license) continue;
      if (filters.base && !(e.base_model || "").toLowerCase().includes(filters.base)) continue;
      const s = words.length ? score(e, words) : 1;
      if (s > 0) out.push([s, e]);
    }
    out.sort((a, b) => b[0] - a[0] || b[1].downloads - a[1].downloads || a[1].id.localeCompare(b[1].id));
    return out.map((p) => p[1]);
  }

  function render(list, results, root) {
    list.replaceChildren();
    for (const e of results) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.className = "zc-name"; a.href = root + "r/" + e.id + "/"; a.textContent = e.name;
      const kind = document.createElement("span");
      kind.className = "zc-kind zc-kind--" + e.kind; kind.textContent = e.kind;
      const meta = document.createElement("span");
      meta.className = "zc-meta";
      meta.textContent = e.id + " · v" + e.latest + " · " + e.license + " · ⬇ " + e.downloads.toLocaleString() + " · " + e.tags.join(", ");
      const sum = document.createElement("span");
      sum.className = "zc-sum"; sum.textContent = e.summary;
      li.append(a, " ", kind, " ", meta, document.createElement("br"), sum);
      list.append(li);
    }
  }

  function attach(form) {
    const root = form.dataset.root || "";
    const input = form.querySelector("input[name=q]");
    const scope = form.closest(".zc-search-page, .zc-home") || document;
    const list = scope.querySelector(".zc-search-results");
    const status = scope.querySelector(".zc-search-status");
    if (!list) return; // a box that only submits to the search page
    let timer = null;
    const run = () => {
      const q = input.value.trim();
      if (!q) { list.replaceChildren(); status.textContent = ""; return; }
      status.textContent = "Searching…";
      loadIndex(root).then((entries) => {
        const found = search(entries, q);
        render(list, found.slice(0, 50), root);
        status.textContent = found.length
          ? found.length.toLocaleString() + " found" + (found.length > 50 ? ", showing the first 50" : "")
          : "Nothing found for “" + q + "”.";
      }).catch((err) => { status.textContent = "The index could not be loaded (" + err.message + ")."; });
    };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 120); });
    form.addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
    const q = new URLSearchParams(location.search).get("q");
    if (q) { input.value = q; run(); }
  }

  function init() { document.querySelectorAll("form.zc-search").forEach(attach); }
  // Material's instant navigation swaps pages without reloading; document$ tells us when.
  if (window.document$) window.document$.subscribe(init);
  else document.addEventListener("DOMContentLoaded", init);
})();
