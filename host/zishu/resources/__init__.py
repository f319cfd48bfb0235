"""Installed resources: install plans (plan.py), the downloader (downloader.py), putting versions
in place (install.py) and registry.json (registry.py). ``path(id, version)`` is the one call
engines make: it returns the installed folder or raises MODEL_NOT_AVAILABLE, never downloading.
"""
