"""Zishu: run AI characters entirely on your own computer, and share them.

The public face of the host package. Subpackages own one concern each (see DESIGN.md):
``zishu.catalog`` holds the manifest models that the catalog toolchain and the host share.
"""

__version__ = "0.1.0"
