"""The catalog toolchain that CI runs: validate manifests, build the index and site, import cards,
scaffold new manifests and collect download statistics. It imports the manifest models from
``zishu.catalog`` and nothing from the host's web layer.
"""
