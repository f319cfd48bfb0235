"""A character's emotion map as the companion uses it, and the user's calibration of it.

The character's manifest maps emotion tags to Live2D targets (``CharacterSpec.emotions``: tag →
``EmotionTarget(expression, motion)``). The expression calibrator lets the user change that per
character; the choices are stored through ``zishu.settings`` (key ``avatar.emotions.<rid>``) as
``{tag: {"expression": str | None, "motion": str | None}}`` and laid over the manifest's map:

``emotion_map(character)``
    The manifest's map with the calibration overlaid: a calibrated tag replaces the manifest's entry
    for the same tag (tags match ignoring case, width, spaces and brackets, as the tag parser
    matches them), other calibrated tags are added. The chat session hands this map to the tag
    parser, so the expression events carry the calibrated expressions.

``save_emotion_map(rid, mapping, known_expressions, known_motions=None)``
    Validates a whole calibration (every expression must be one the avatar has; every motion, when
    ``known_motions`` is given, a motion group it has) and stores it in place of the previous one,
    which it returns so a caller can offer Undo.

``emotion_tags(character)`` lists the tags a calibrator offers: the canonical emotions the tag
parser knows (``stream_text.BUILTIN_EMOTIONS``) and the character's own tags; ``effective_targets``
says what each of them resolves to through the tag parser's own lookup.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from zishu.catalog.manifest import EmotionTarget
from zishu.errors import UsageError

from .stream_text import BUILTIN_EMOTIONS, EmotionTags

MAX_TAGS = 200  # the most tags one calibration may hold
MAX_TAG_CHARS = 32  # as long as a manifest's emotion tag may be
_BRACKETS = "[]【】［］()（）"


def setting_key(rid: str) -> str:
    """The settings key of ``rid``'s calibration."""
    from zishu.settings import emotion_map_key

    return emotion_map_key(rid)


def canonical_emotions() -> list[str]:
    """The canonical emotion names the tag parser knows (happy, excited, angry, ...), in its order."""
    return list(dict.fromkeys(BUILTIN_EMOTIONS.values()))


def tag_key(tag: str) -> str:
    """A tag as the tag parser compares it: brackets around it dropped, NFKC, trimmed, case-folded."""
    inner = tag.strip()
    if len(inner) >= 2 and inner[0] in _BRACKETS and inner[-1] in _BRACKETS:
        inner = inner[1:-1]
    return unicodedata.normalize("NFKC", inner).strip().casefold()


def calibration(rid: str) -> dict[str, EmotionTarget]:
    """The saved calibration of ``rid`` (empty when none). Entries that no longer read as a target
    (a setting edited by hand) are skipped rather than breaking the character."""
    from zishu.settings import stored_emotion_map

    out: dict[str, EmotionTarget] = {}
    for tag, value in stored_emotion_map(rid).items():
        try:
            out[str(tag)] = EmotionTarget.model_validate(value)
        except ValidationError:
            continue
    return out


def emotion_map(character) -> dict[str, EmotionTarget]:
    """``character.spec.emotions`` with the saved calibration of ``character.id`` laid over it."""
    merged: dict[str, EmotionTarget] = dict(character.spec.emotions)
    by_key = {tag_key(tag): tag for tag in merged}
    for tag, target in calibration(character.id).items():
        merged[by_key.get(tag_key(tag), tag)] = target
    return merged


def emotion_tags(character) -> list[str]:
    """The tags a calibrator lists: the canonical emotions, then the character's own tags that are
    not one of those words (``开心`` is listed, ``Happy`` is not: it is ``happy``)."""
    tags = canonical_emotions()
    seen = {tag_key(t) for t in tags}
    for tag in character.spec.emotions:
        if tag_key(tag) not in seen:
            seen.add(tag_key(tag))
            tags.append(tag.strip())
    return tags


def effective_targets(emotions: Mapping[str, EmotionTarget], tags: Iterable[str]) -> dict[str, dict]:
    """What each tag resolves to through the tag parser with the map ``emotions``, as
    ``{tag: {"expression", "motion"}}`` (both None when the tag finds nothing)."""
    try:
        parser = EmotionTags(emotions)
        lookup = lambda tag: getattr(parser.lookup(tag), "target", None)  # noqa: E731
    except UsageError:  # a map the parser refuses (two keys that are the same tag): exact keys only
        by_key = {tag_key(k): v for k, v in emotions.items()}
        lookup = lambda tag: by_key.get(tag_key(tag))  # noqa: E731
    out = {}
    for tag in tags:
        target = lookup(tag)
        out[tag] = {"expression": getattr(target, "expression", None), "motion": getattr(target, "motion", None)}
    return out


def validate_mapping(mapping: Any, known_expressions: Iterable[str],
                     known_motions: Iterable[str] | None = None) -> dict[str, EmotionTarget]:
    """``mapping`` checked: a JSON object of tag → {"expression": name | null, "motion": name | null}
    whose names the avatar has. Raises UsageError naming the first thing wrong."""
    if not isinstance(mapping, dict):
        raise UsageError('expected a JSON object: {"tag": {"expression": name or null, "motion": name or null}}')
    if len(mapping) > MAX_TAGS:
        raise UsageError(f"the emotion map has {len(mapping)} tags; at most {MAX_TAGS}")
    expressions = list(dict.fromkeys(known_expressions))
    motions = None if known_motions is None else list(dict.fromkeys(known_motions))
    out: dict[str, EmotionTarget] = {}
    seen: dict[str, str] = {}
    for tag, value in mapping.items():
        key = tag_key(tag)
        if not key:
            raise UsageError(f"emotion tag {tag!r} is empty")
        if len(tag.strip()) > MAX_TAG_CHARS:
            raise UsageError(f"emotion tag {tag!r} is longer than {MAX_TAG_CHARS} characters")
        if any(c in _BRACKETS or c in "\r\n" for c in key):
            raise UsageError(f"emotion tag {tag!r} contains a bracket or a line break")
        if key in seen:
            raise UsageError(f"emotion tags {seen[key]!r} and {tag!r} are the same tag "
                             "(tags match ignoring case and spaces)")
        seen[key] = tag
        if not isinstance(value, dict):
            raise UsageError(f'emotion {tag!r}: expected {{"expression": name or null, "motion": name or null}}, '
                             f"got {value!r}")
        try:
            target = EmotionTarget.model_validate(value)
        except ValidationError as e:
            problem = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'value'}: {err['msg']}" for err in e.errors())
            raise UsageError(f"emotion {tag!r}: {problem}") from None
        if target.expression is not None and target.expression not in expressions:
            have = ", ".join(expressions) or "none"
            raise UsageError(f"emotion {tag!r}: unknown expression {target.expression!r} "
                             f"(the avatar's expressions: {have})")
        if target.motion is not None and motions is not None and target.motion not in motions:
            have = ", ".join(motions) or "none"
            raise UsageError(f"emotion {tag!r}: unknown motion group {target.motion!r} "
                             f"(the avatar's motion groups: {have})")
        out[tag.strip()] = target
    return out


def save_emotion_map(rid: str, mapping: Any, known_expressions: Iterable[str],
                     known_motions: Iterable[str] | None = None) -> dict[str, dict]:
    """Validate ``mapping`` and store it as the whole calibration of ``rid`` (an empty mapping
    clears it). Returns the calibration it replaced, as stored (``{tag: {"expression", "motion"}}``)."""
    from zishu.settings import store_emotion_map, stored_emotion_map

    checked = validate_mapping(mapping, known_expressions, known_motions)
    previous = stored_emotion_map(rid)
    store_emotion_map(rid, {tag: target.model_dump() for tag, target in checked.items()})
    return previous
