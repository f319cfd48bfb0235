"""Every ``zishu`` command, one module per group of commands; ``zishu.cli`` imports each on first use.

A command parses its arguments, calls one service (``zishu.runtime`` assembles them for a
ZISHU_HOME; the resource commands call ``zishu.resources`` and ``zishu.catalog`` directly) and
renders what comes back. Logic that is neither parsing nor rendering belongs to the service.

    app.py        app (the default), serve, worker, plugins, open
    resources.py  search, info, install, uninstall, list, path, update, gc
    engines.py    engines
    cluster.py    cluster init, cluster status
    run.py        run llm|asr|tts|image|embedding
    chat.py       chat
    live2d.py     live2d core
    publish.py    publish (a character to the catalog, by release and pull request)
    cards.py      catalog import-card, catalog export-card (mounted by zishu_catalog.cli)
"""
