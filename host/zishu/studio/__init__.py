"""The studio: pictures of characters, made on the job queue and kept in a gallery.

``requests`` (the ``ImageRequest`` every interface validates with), ``service`` (``Studio``: check a
request, draw it, keep it; what the REST API, the CLI, the A1111 and OpenAI surfaces and MCP call),
``jobs`` (the ``image`` job type), ``gallery`` (the table and files under ``ZISHU_HOME/studio/``),
``cache`` (the same request returns the stored pictures), ``metadata`` (AUTOMATIC1111's
``parameters`` text) and ``hashes`` (model hashes for the cache and the metadata).
"""
