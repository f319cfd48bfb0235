// Discover: search the catalog as the user types, with filters from the catalog's facets.
import { $, api, debounce, el, formatDownloadSize, idPath, reportError, toast } from "./app.js";

const form = $("search-form");
const fields = ["q", "kind", "tag", "license", "base_model", "sort"];
const FACETS = { kind: "kinds", tag: "tags", license: "licenses", base_model: "base_models" };
const wanted = new URLSearchParams(location.search);
let searches = 0;

function card(entry) {
  const installed = entry.installed && entry.installed.length
    ? el("span", { class: "badge ok", "data-testid": "installed-badge" }, "Installed") : null;
  const size = "install_size" in entry // with what it requires; "size unknown" or "at least …", never 0 B
    ? formatDownloadSize(entry.install_size, entry.install_size_exact)
    : formatDownloadSize(entry.size, Boolean(entry.size_exact));
  const facts = [entry.license, size, `${entry.downloads || 0} downloads`]
    .filter(Boolean).join(" · ");
  return el("a", { class: "card resource-card", href: `/resources/${idPath(entry.id)}`, "data-testid": "result-card",
    dataset: { id: entry.id } },
  el("div", { class: "row spread" },
    el("span", { class: "card-title" }, entry.name || entry.id),
    el("span", { class: "row" }, installed, el("span", { class: "chip kind" }, entry.kind))),
  el("p", { class: "muted mono small" }, entry.id),
  el("p", { class: "card-summary" }, entry.summary || ""),
  el("p", { class: "muted small" }, facts));
}

function render(data) {
  const warning = $("catalog-warning");
  warning.hidden = !data.warning;
  warning.textContent = data.warning ? `The catalog could not be reached; showing what Zishu had saved. (${data.warning})` : "";
  $("result-count").textContent = data.total === 1 ? "1 resource" : `${data.total} resources`;
  $("results").replaceChildren(...data.results.map(card));
  $("results-empty").hidden = data.results.length > 0;
}

async function search() {
  const params = new URLSearchParams();
  for (const name of fields) {
    const value = form.elements[name].value.trim();
    if (value && !(name === "sort" && value === "popular")) params.set(name, value);
  }
  history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
  const mine = ++searches;
  $("results").setAttribute("aria-busy", "true");
  try {
    const data = await api(`/api/catalog/search?${params}`);
    if (mine === searches) render(data);
  } catch (error) {
    if (mine !== searches) return;
    $("result-count").textContent = "The search failed.";
    reportError(error);
  } finally {
    if (mine === searches) $("results").removeAttribute("aria-busy");
  }
}

async function loadFacets() {
  let facets;
  try {
    facets = await api("/api/catalog/facets");
  } catch (error) {
    reportError(error);
    return;
  }
  for (const [name, key] of Object.entries(FACETS)) {
    const select = form.elements[name];
    const values = facets[key] || [];
    if (wanted.get(name) && !values.includes(wanted.get(name))) values.push(wanted.get(name));
    select.append(...values.map((value) => el("option", { value }, value)));
    select.value = wanted.get(name) || "";
  }
}

async function updateCatalog() {
  try {
    const answer = await api("/api/catalog/update", { method: "POST" });
    if (answer.warning) toast(answer.warning, "error");
    else toast(answer.changed ? "The catalog was updated." : "The catalog is up to date.", "success");
    search();
  } catch (error) {
    reportError(error);
  }
}

form.elements.q.value = wanted.get("q") || "";
form.elements.sort.value = wanted.get("sort") || "popular";
form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});
form.elements.q.addEventListener("input", debounce(search, 250));
for (const name of fields.slice(1)) form.elements[name].addEventListener("change", search);
$("catalog-update").addEventListener("click", updateCatalog);
loadFacets().then(search);
