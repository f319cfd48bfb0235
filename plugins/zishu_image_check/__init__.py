"""Zishu's built-in picture check, registered through the ``zishu`` entry point ``image_check``.

It implements the ``check_image`` hook with an ONNX image classifier the user installed (a catalog
model of role ``image-check``, or a path chosen in Settings; the host passes it in the hook's
``context``), run through onnxruntime (``classifier.py``). A picture is blocked in safe mode when a
blocking label scores at or above the threshold (Settings, else the model's own, else 0.5); the
scores are returned either way. With no classifier installed it says so once in the log and
answers nothing, so safe mode relies on the prompt filter.

Licence choice: no classifier ships with Zishu and none is fetched. NudeNet's detector (the ONNX
file inside the ``nudenet`` wheel) is under AGPL-3.0, whose terms would reach this Apache-2.0 app,
so it is deliberately not used; pick a classifier whose licence suits you (for example one under
Apache-2.0 or MIT) and describe it with the metadata ``classifier.py`` documents.
"""

from __future__ import annotations

import logging
from typing import Any

from zishu.hookspecs import hookimpl

from .classifier import load_classifier

log = logging.getLogger(__name__)
_told_missing = False

NOT_INSTALLED = ("no image classifier is installed: pictures are not checked, safe mode relies on the prompt "
                 "filter (install an ONNX image classifier, a catalog model of role image-check, or set its path "
                 "in Settings > Studio safety)")


@hookimpl
def check_image(image, context: dict) -> dict[str, Any] | None:
    global _told_missing
    path = context.get("image_check_model")
    if not path:
        if not _told_missing:
            _told_missing = True
            log.warning(NOT_INSTALLED)
        return None
    classifier = load_classifier(path)
    scores = classifier.scores(image)
    threshold = context.get("image_check_threshold") or classifier.threshold
    hits = {label: score for label, score in scores.items() if label in classifier.blocking and score >= threshold}
    blocked = bool(hits) and bool(context.get("safe_mode", True))
    reason = ""
    if blocked:
        found = ", ".join(f"{label} {score:.2f}" for label, score in sorted(hits.items(), key=lambda h: -h[1]))
        reason = f"safe mode: the image check scored {found} (threshold {threshold:g})"
    return {"blocked": blocked, "reason": reason, "scores": scores}
