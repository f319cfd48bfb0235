"""The studio's safety: safe mode, the verdicts on prompts and pictures, and the blur of blocked ones.

Safe mode is a setting (``studio_safe_mode``, on by default) and is forced on for characters whose
manifest says ``audience: all-ages`` (``safe_mode_for``). In safe mode:

- ``check_prompt(text, safe_mode)`` refuses a prompt holding an entry of the word lists
  (``zishu.studio.prompt_filter``); its ``Verdict`` names the words that matched;
- ``check_images(images, context)`` asks every plugin's ``check_image`` hook about each picture (the
  built-in ``zishu_image_check`` runs an installed ONNX classifier); any plugin saying blocked
  blocks. A plugin that raises is recorded (the Plugins panel shows it) and the others still judge.
  ``image_check_context`` fills in the classifier the user installed or chose.

A blocked picture is never silently dropped: the gallery keeps it with the verdict's reason and
shows ``blurred(image)`` in its place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from zishu import plugins
from zishu.errors import ZishuError
from zishu.settings import Settings

from . import prompt_filter

log = logging.getLogger(__name__)

IMAGE_CHECK_ROLE = "image-check"  # the catalog model role of image classifiers
INSTALL_HINT = ("install an ONNX image classifier (a catalog model of role image-check) or set the path of one "
                "in Settings > Studio safety; until then safe mode relies on the prompt filter")


@dataclass(frozen=True)
class Verdict:
    """What a check found. ``by``: who judged ("prompt filter" or plugin names); ``words``: the
    filter's entries that matched; ``scores``: label → score (``plugin:label`` when several
    plugins answered); ``problems``: plugin → what went wrong when it tried."""

    blocked: bool
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    by: tuple[str, ...] = ()
    problems: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"blocked": self.blocked, "reason": self.reason, "scores": dict(self.scores),
                "words": list(self.words), "by": list(self.by), "problems": dict(self.problems)}


def _audience(character: Any) -> str | None:
    """The ``audience`` of a character given as a manifest model, its spec, or their dicts."""
    if character is None:
        return None
    if isinstance(character, Mapping):
        spec = character.get("spec")
        return (spec.get("audience") if isinstance(spec, Mapping) else None) or character.get("audience")
    spec = getattr(character, "spec", character)
    return getattr(spec, "audience", None)


def safe_mode_for(settings: Settings, character: Any = None) -> bool:
    """Whether safe mode holds for a picture of ``character`` (None: no character): the user's
    setting, always on for a character marked ``audience: all-ages``."""
    return settings.studio_safe_mode or _audience(character) == "all-ages"


def check_prompt(text: str, safe_mode: bool, home: Path | None = None) -> Verdict | None:
    """A blocking Verdict naming the matched words when ``safe_mode`` is on and ``text`` holds an
    entry of the word lists of ``home`` (default ZISHU_HOME); None when the prompt may go ahead.
    Give it what will be drawn (the style's and the character's prompt text included), never the
    negative prompt: that one names what to keep out."""
    if not safe_mode or not text:
        return None
    if home is None:
        from zishu import config

        home = config.home()
    found = prompt_filter.find_words(home, text)
    if not found:
        return None
    words = tuple(dict.fromkeys(entry for _, entry in found))
    return Verdict(blocked=True, reason=f"safe mode: the prompt contains {', '.join(words)}",
                   words=words, by=("prompt filter",))


def check_images(images: Iterable[Image.Image], context: Mapping[str, Any]) -> list[Verdict]:
    """One Verdict per picture from the plugins' ``check_image`` answers: blocked when any plugin
    says so (the reasons joined); a plugin that raises or answers nonsense is named in ``problems``."""
    verdicts = []
    for image in images:
        problems: dict[str, str] = {}
        answers = plugins.collect("check_image", failed=problems, image=image, context=dict(context))
        blocked, reasons, scores, by = False, [], {}, []
        for name, answer in answers:
            if not isinstance(answer, Mapping) or not isinstance(answer.get("blocked", False), bool):
                problems[name] = f"check_image answered {answer!r}, not {{blocked, reason, scores}}"
                continue
            by.append(name)
            for label, score in (answer.get("scores") or {}).items():
                scores[f"{name}:{label}" if len(answers) > 1 else str(label)] = float(score)
            if answer.get("blocked"):
                blocked = True
                reasons.append(str(answer.get("reason") or f"blocked by {name}"))
        verdicts.append(Verdict(blocked=blocked, reason="; ".join(reasons), scores=scores, by=tuple(by),
                                problems=problems))
    return verdicts


def blurred(image: Image.Image) -> Image.Image:
    """``image`` made unreadable for the gallery's blocked results: shrunk to a few pixels, enlarged
    again and blurred (same size and mode)."""
    width, height = image.size
    small = image.convert("RGB").resize((max(1, width // 32), max(1, height // 32)), Image.Resampling.BILINEAR)
    soft = small.resize((width, height), Image.Resampling.BILINEAR)
    soft = soft.filter(ImageFilter.GaussianBlur(radius=max(2, max(width, height) // 40)))
    return soft.convert(image.mode) if image.mode != "RGB" else soft


# ---- the image classifier -------------------------------------------------------------------


def _installed_classifiers(registry) -> list[Path]:
    """The folders of installed models of role image-check, by id."""
    from zishu.catalog.manifest import ModelSpec
    from zishu.resources.install import manifest_of

    found = []
    for rid in sorted(registry.load()):
        try:
            folder = registry.path(rid)
            resource = manifest_of(folder)
        except (ZishuError, OSError, ValueError):
            continue
        if resource.kind == "model" and isinstance(resource.spec, ModelSpec) and resource.spec.role == IMAGE_CHECK_ROLE:
            found.append(folder)
    return found


def image_check_model(registry, settings: Settings) -> Path | None:
    """The classifier to use: the model or path chosen in Settings, else the first installed model
    of role image-check; None when there is none. A chosen one that is gone raises (naming it)."""
    chosen = settings.studio_image_check.get("model")
    if chosen:
        from zishu.engines.resolve import resolve_model

        return resolve_model(chosen, registry).path  # ResourceNotAvailable names what is missing
    installed = _installed_classifiers(registry)
    return installed[0] if installed else None


def image_check_context(registry, settings: Settings, *, safe_mode: bool, prompt: str = "",
                        character: str | None = None) -> dict[str, Any]:
    """The ``context`` the ``check_image`` hook receives for one request."""
    try:
        model = image_check_model(registry, settings)
    except ZishuError as e:
        log.warning("the image classifier chosen in Settings cannot be used: %s", e)
        model = None
    return {"safe_mode": safe_mode, "prompt": prompt, "character": character,
            "image_check_model": str(model) if model else None,
            "image_check_threshold": settings.studio_image_check.get("threshold")}


def image_check_status(registry, settings: Settings) -> dict[str, Any]:
    """What Settings shows: the classifier in use (or why none) and what to install."""
    try:
        model = image_check_model(registry, settings)
    except ZishuError as e:
        return {"installed": False, "model": None, "message": f"{e}; {INSTALL_HINT}"}
    if model is None:
        return {"installed": False, "model": None, "message": f"No image classifier is installed: {INSTALL_HINT}."}
    return {"installed": True, "model": str(model), "message": f"Pictures are checked by {model}."}
