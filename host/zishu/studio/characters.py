"""Drawing a character: "Draw this character", its expression sheet, and the sheet as its 2D avatar.

``draw_request(character)``
    The image request fields that draw ``character`` recognisably every time: its appearance
    (``image_style.prompt_prefix``, else the first sentences of its persona), its
    ``image_style`` (the style it names, its negative prompt, its LoRA and weight) and a seed
    derived from its id (``character_seed``), so the same character comes out the same.

``with_character(fields, character)``
    What ``Studio`` does with a request's ``character``: ``fields`` (only those the user set)
    merged with ``draw_request``: the appearance before the user's prompt (once: a prompt that
    already starts with it keeps it as is), the negative prompts joined, the character's LoRA added,
    its seed and style only where the user set none.

``sheet_asks(character)`` and ``expression_sheet_requests(character)``
    One request per emotion in the character's emotion map (``zishu.companion.expressions``, the
    calibration included), keyed by the emotion's name as the companion's emotion events carry it
    (``happy`` for ``[开心]``): the same seed and LoRA, the emotion's words added. A character with
    no emotion map gets ``DEFAULT_SHEET``.

``submit_expression_sheet(queue, character)``
    Queues the sheet as ``image`` jobs (the asks: the studio expands each when it draws it);
    returns emotion → job id.

``set_avatar_sheet(runtime, rid, pictures)``
    Saves the pictures (emotion → image bytes) with the character as its picture avatar plus
    ``avatar.sheet`` (emotion → file), through the character save path: a new version, so the
    Characters panel's Undo takes it back. The companion page then shows the emotion's picture on
    each emotion event (``zishu.companion.avatar``).

The style a request names is not applied here: the studio applies it like any request's
(``zishu.studio.styles.apply_style``), after the character.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from zishu.companion.avatar import sheet_emotion
from zishu.companion.characters import picture_name, update_character
from zishu.companion.expressions import emotion_map, tag_key
from zishu.companion.stream_text import canonical_emotion
from zishu.errors import UsageError

from .styles import join_prompts

DEFAULT_SHEET = ("neutral", "happy", "sad", "angry", "surprised", "shy")
MAX_SHEET = 32  # emotions on one sheet (each is an image job)
MAX_APPEARANCE = 300  # characters of persona used as the appearance when the character names none
SHEET_FOLDER = "sheet"  # the sheet's pictures, inside the character's version folder
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")
_PLACEHOLDER = re.compile(r"\{\{\s*(char|user)\s*\}\}", re.I)


def character_of(registry: Any, rid: str) -> Any:
    """The installed character ``rid`` (``zishu.companion.brain.Character``); refused naming the field
    ``character`` (ResourceNotAvailable when it is not installed, UsageError when it is no character)."""
    from zishu.companion.brain import Character
    from zishu.errors import ResourceNotAvailable

    try:
        return Character.installed(registry, rid)
    except ResourceNotAvailable as e:
        raise ResourceNotAvailable(f"character: {e}", install=e.install) from None
    except UsageError as e:
        raise UsageError(f"character: {e}") from None


def character_seed(rid: str) -> int:
    """A seed that is always the same for character ``rid`` (0 to 2**32 - 1)."""
    return int.from_bytes(hashlib.sha256(f"zishu-character:{rid}".encode()).digest()[:4], "big")


def appearance(character: Any) -> str:
    """What the character looks like, for an image prompt: its ``image_style.prompt_prefix``, else
    the first sentences of its persona (at most ``MAX_APPEARANCE`` characters, placeholders filled)."""
    style = character.spec.image_style
    if style is not None and style.prompt_prefix.strip():
        return style.prompt_prefix.strip()
    persona = _PLACEHOLDER.sub(lambda m: character.name if m.group(1).lower() == "char" else "you",
                               character.spec.persona).strip()
    first = persona.split("\n\n", 1)[0].strip()
    out = ""
    for sentence in _SENTENCE.split(first):
        if out and len(out) + len(sentence) + 1 > MAX_APPEARANCE:
            break
        out = f"{out} {sentence}".strip()
    return out[:MAX_APPEARANCE].strip()


def draw_request(character: Any, *, prompt: str = "", style: str | None = None) -> dict[str, Any]:
    """The request fields that draw ``character`` (``prompt``: what else to draw; ``style``: a style
    name instead of the one its ``image_style`` names)."""
    image_style = character.spec.image_style
    fields: dict[str, Any] = {
        "prompt": join_prompts(appearance(character), prompt),
        "negative_prompt": image_style.negative_prompt.strip() if image_style else "",
        "character": character.id,
        "loras": [{"id": image_style.lora, "weight": image_style.lora_weight}]
        if image_style is not None and image_style.lora else [],
        "seed": character_seed(character.id),
    }
    chosen = style or (image_style.style if image_style else None)
    if chosen:
        fields["style"] = chosen
    return fields


def with_character(fields: Mapping[str, Any], character: Any) -> dict[str, Any]:
    """``fields`` (a request's fields the user set) drawn as ``character``: its appearance before the
    prompt, its negative prompt and LoRA added, its seed and style where ``fields`` has none."""
    prompt = str(fields.get("prompt") or "")
    look = appearance(character)
    if look and prompt.strip().startswith(look):  # already drawn as the character (draw_request's fields)
        prompt = prompt.strip()[len(look):].strip().lstrip(",").strip()
    base = draw_request(character, prompt=prompt, style=fields.get("style") or None)
    out = dict(fields)
    out["prompt"] = base["prompt"]
    out["negative_prompt"] = join_prompts(fields.get("negative_prompt"), base["negative_prompt"])
    loras = list(fields.get("loras") or [])
    have = {lora.get("id") if isinstance(lora, Mapping) else getattr(lora, "id", None) for lora in loras}
    out["loras"] = loras + [lora for lora in base["loras"] if lora["id"] not in have]
    if "seed" not in fields:  # an explicit seed (None/-1: random) wins
        out["seed"] = base["seed"]
    if base.get("style") and not fields.get("style"):
        out["style"] = base["style"]
    out["character"] = character.id
    return out


def sheet_emotions(character: Any) -> dict[str, str]:
    """The emotions of ``character``'s sheet: name (as the emotion events carry it) → the words
    added to the prompt. From its emotion map (calibration included), else ``DEFAULT_SHEET``."""
    found: dict[str, str] = {}
    for tag in emotion_map(character):
        canonical = canonical_emotion(tag_key(tag))
        name = canonical or tag_key(tag)
        if name and name not in found:
            found[name] = canonical or tag.strip().strip("[]【】［］()（）").strip()
    if not found:
        found = {name: name for name in DEFAULT_SHEET}
    if len(found) > MAX_SHEET:
        raise UsageError(f"{character.name} has {len(found)} emotions; a sheet draws at most {MAX_SHEET}")
    return found


def sheet_asks(character: Any, *, prompt: str = "", style: str | None = None) -> dict[str, dict]:
    """emotion name → the request to queue for it: the character, the emotion's words after
    ``prompt``, and ``style`` when given (the studio adds the character's appearance, LoRA and seed)."""
    return {name: {"character": character.id,
                   "prompt": join_prompts(prompt, f"{words} expression", "portrait, upper body"),
                   **({"style": style} if style else {})}
            for name, words in sheet_emotions(character).items()}


def expression_sheet_requests(character: Any, *, prompt: str = "", style: str | None = None) -> dict[str, dict]:
    """emotion name → the request fields that draw ``character`` showing it (same seed and LoRA):
    what the studio makes of each of ``sheet_asks``."""
    return {name: with_character(ask, character)
            for name, ask in sheet_asks(character, prompt=prompt, style=style).items()}


def character_requests(character: Any, *, prompt: str = "", style: str | None = None,
                       sheet: bool = False) -> list[dict]:
    """The requests of "Draw this character" (one) or of its expression sheet (one per emotion)."""
    if sheet:
        return list(expression_sheet_requests(character, prompt=prompt, style=style).values())
    return [draw_request(character, prompt=prompt, style=style)]


def submit_expression_sheet(queue: Any, character: Any, *, prompt: str = "",
                            style: str | None = None) -> dict[str, int]:
    """Queue ``character``'s expression sheet as ``image`` jobs; emotion → job id."""
    asks = sheet_asks(character, prompt=prompt, style=style)
    return {name: queue.submit("image", params).id for name, params in asks.items()}


def set_avatar_sheet(runtime: Any, rid: str, pictures: Mapping[str, bytes]) -> dict:
    """Make ``pictures`` (emotion → PNG, JPEG, WebP or GIF bytes) ``rid``'s avatar: the ``neutral``
    picture (else the first) is its picture, every one is shown on its emotion. Saved as a new
    version of the character (a catalog character becomes a local copy), so Undo takes it back.
    Returns what ``update_character`` returns."""
    if not isinstance(pictures, Mapping) or not pictures:
        raise UsageError("pictures: give at least one emotion's picture")
    if len(pictures) > MAX_SHEET:
        raise UsageError(f"pictures: {len(pictures)} emotions; a sheet has at most {MAX_SHEET}")
    files: dict[str, bytes] = {}
    sheet: dict[str, str] = {}
    for emotion, data in pictures.items():
        try:
            name = sheet_emotion(emotion)
        except UsageError as e:
            raise UsageError(f"pictures: {e}") from None
        if name in sheet:
            raise UsageError(f"pictures: {emotion!r} is the same emotion as another one ({name})")
        file = f"{SHEET_FOLDER}/{picture_name(data, f'{name} picture')}"
        files[file] = bytes(data)
        sheet[name] = file
    base = sheet.get("neutral") or next(iter(sheet.values()))
    return update_character(runtime, rid, {"avatar": {"image": base, "sheet": sheet}}, files=files)
