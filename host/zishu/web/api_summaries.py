"""Summaries for the routes that have neither a docstring nor a line in their module's table (the
routes written before the OpenAPI document existed). A new route describes itself with a docstring
instead; ``tests/test_openapi.py`` names any route that has no summary from anywhere."""

from __future__ import annotations

SUMMARIES = {
    "GET pages.home": "Opens the app on Discover (a redirect).",
    "GET api.catalog_facets": "The catalog's kinds, tags, licenses and base models with their counts.",
    "GET api.catalog_resource": "One catalog resource's detail, with the versions installed here.",
    "GET api.catalog_search": "Search the catalog (?q=, kind, tag, license, base_model, sort, limit).",
    "POST api.catalog_update": "Fetch the catalog's index again (offline: the bundled snapshot).",
    "POST companion.open_session": "Open a companion session with a character ({character, max_tokens?, chat?}).",
    "DELETE companion.close_session": "Close a companion session.",
    "GET companion.memories": "The session character's memories (?forgotten=1 adds the forgotten ones).",
    "PUT companion.change_memory": "Change a memory's text or pin ({text?, pinned?}).",
    "POST companion.memory_action": "Forget a memory, or restore a forgotten one (action: forget, restore).",
    "GET companion.export_memories": "The character's memories as a JSON file (a download).",
    "POST companion.undo_delete": "Bring back the memories the last delete-all removed.",
    "GET engines.state": "The engines from plugins, the models loaded now, and memory in use.",
    "GET api.health": "Whether the app answers, and its version.",
    "POST api.install": "Install a catalog resource ({request: owner/name[@version]}) as a job.",
    "GET api.jobs": "The recent jobs, and which queue runs them.",
    "GET api.job": "One job: status, progress, result or error.",
    "POST api.cancel": "Cancel a job (a running one stops at its next check).",
    "POST api.priority": "Change a pending job's priority ({priority}).",
    "POST api.retry": "Run a failed, cancelled or interrupted job again.",
    "DELETE api.clear_finished": "Remove the finished jobs from the list.",
    "GET api.library": "What is installed: names, versions, sizes.",
    "POST api.open_folder": "Open an installed resource's folder in the file manager.",
    "GET api.plugin_list": "The plugins, their hooks and errors, which are disabled, the allow-list.",
    "POST api.plugin_toggle": "Enable or disable a plugin (action: enable, disable; applies at restart).",
    "GET api.settings": "The settings.",
    "PUT api.change_settings": "Change settings (the fields to change).",
    "POST studio.restore": "Bring a picture back from the gallery's trash (Undo).",
    "GET api.system_info": "This machine: CPU, memory, GPUs, disk, and the tier it falls in.",
    "GET characters.character_edit": "The form editing a character (a page).",
    "GET characters.character_new": "The form making a new character (a page).",
    "GET cluster.nodes": "The live nodes of the cluster: job types, models, running jobs, free memory, GPU, load.",
    "GET cluster.ranking": "The models ranked by how much the cluster's jobs asked for them (Wanted models).",
}
