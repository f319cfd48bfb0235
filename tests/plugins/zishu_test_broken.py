"""A plugin that fails at import, as a plugin with a missing dependency would."""

raise RuntimeError("this plugin is broken on purpose")
