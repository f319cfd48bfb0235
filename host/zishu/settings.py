"""The user's settings, typed and validated in one place, kept in the settings table of ``zishu.db``.

Every setting the app has is a field of ``Settings`` with its default; each is stored under its own
key (the key names are the ones earlier versions wrote, so existing databases read the same):

    catalog_url        "catalog_url"        the catalog chosen in Settings ("" = ZISHU_CATALOG or the
                                            bundled snapshot); an http(s):// or file:// URL
    plugins_disabled   "plugins.disabled"   names of the plugins the user turned off
    companion_models   "companion.models"   role (llm, asr, vad, embedding) → model id, the models a
                                            companion uses when neither the caller nor the character
                                            names one
    companion_devices  "companion.devices"  role → "auto", "cpu", "cuda" or "cuda:N": where each of a
                                            companion's models runs ("auto", the default, is a GPU
                                            when the engine's library can use one)
    companion_voice    "companion.voice"    {"engine", "voice"}: the voice of characters that name none
                                            ({} = espeak-ng's default voice)
    studio_model       "studio.model"       the model the studio draws with when a request names none
                                            ("" = the first image model installed); a catalog id
                                            (owner/name[@version]) or a local path
    companion_turn_seconds "companion.turn_seconds"
                                            the time budget of one companion turn or LLM completion
                                            (waiting for a busy model and generating), 5 to 3600 s
    studio_safe_mode   "studio.safe_mode"   the studio's safe mode (on by default): the prompt filter and
                                            the image check block explicit pictures; always on for
                                            characters marked for all ages (``zishu.studio.safety``)
    studio_image_check "studio.image_check" {"model", "threshold"}: the image classifier that checks
                                            each picture (a catalog id or a path to an .onnx file;
                                            {} = the first installed model of role image-check) and
                                            the score from which a label blocks (0 < t < 1)
    storyboard_picture_side "storyboard.picture_side"
                                            the short side, in pixels, of the picture drawn for each
                                            storyboard shot (64 to 2048, a multiple of 8; 512, the
                                            size SD 1.5 and SD-Turbo draw best; 1024 for SDXL); the
                                            long side follows the project's aspect
    local_api_enabled  "local_api.enabled"  whether ``zishu serve``/``zishu app`` also listen on the fixed
                                            port for other tools (the key: ``zishu.api_key``)
    local_api_port     "local_api.port"     that port, on 127.0.0.1 (default ``LOCAL_API_PORT``)
    local_api_origins  "local_api.origins"  browser origins allowed to call it (CORS), e.g.
                                            "http://127.0.0.1:8000" for SillyTavern
    emotion map        "avatar.emotions.<character id>"
                                            the expression calibration of one character (tag →
                                            {"expression", "motion"}); checked against the avatar
                                            by ``zishu.companion.expressions``, read and written here

``load()`` reads them all: a stored value that no longer validates (edited by hand, written by a
broken build) reads as the default instead of breaking the app. ``change(values)`` validates the
changes together and writes only when all of them pass; a refusal is a ``UsageError`` whose message
names the setting and what it accepts. ``set_plugin_disabled(name, disabled)`` switches one plugin,
refusing names no plugin has and Zishu's own plugins. The theme is not here: the window keeps it in the browser's
storage, before the page paints.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from zishu import plugins
from zishu.db import Setting, get_setting, set_setting
from zishu.errors import NotFound, UsageError
from zishu.ids import ID_PATTERN

log = logging.getLogger(__name__)

COMPANION_ROLES = ("llm", "asr", "vad", "embedding")
KEYS = {"catalog_url": "catalog_url", "plugins_disabled": "plugins.disabled", "companion_models": "companion.models",
        "companion_devices": "companion.devices", "companion_voice": "companion.voice",
        "companion_turn_seconds": "companion.turn_seconds", "studio_safe_mode": "studio.safe_mode",
        "studio_image_check": "studio.image_check", "studio_model": "studio.model",
        "storyboard_picture_side": "storyboard.picture_side",
        "local_api_enabled": "local_api.enabled",
        "local_api_port": "local_api.port", "local_api_origins": "local_api.origins"}
# The local API's default port: none of the tools people run beside Zishu use it (Ollama 11434, LM Studio
# 1234, KoboldCpp 5001, text-generation-webui 5000/7860, AUTOMATIC1111 7860, ComfyUI 8188, SillyTavern
# 8000, Open WebUI and LocalAI 8080, GPT-SoVITS 9880), and it is below the ports operating systems hand
# out to outgoing connections (Linux 32768-60999, Windows and macOS 49152-65535), so it is free at start.
LOCAL_API_PORT = 29175
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
EMOTION_MAP_PREFIX = "avatar.emotions."
_URL = re.compile(r"^(https?|file)://\S+$")
_VOICE_ID = re.compile(ID_PATTERN)
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class Settings(BaseModel):
    """Every app-wide setting with its default. Build through ``model_validate`` to check values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plugins_disabled: list[str] = []
    companion_models: dict[str, str] = {}
    companion_devices: dict[str, str] = {}
    companion_voice: dict[str, str] = {}
    catalog_url: str = ""
    companion_turn_seconds: int = 120  # zishu.companion.limits.TURN_SECONDS
    studio_safe_mode: bool = True
    studio_image_check: dict[str, Any] = {}

    @field_validator("studio_safe_mode", mode="before")
    @classmethod
    def _studio_safe_mode(cls, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError("studio_safe_mode must be true or false")
        return value

    @field_validator("studio_image_check", mode="before")
    @classmethod
    def _studio_image_check(cls, value: Any) -> dict[str, Any]:
        hint = ('studio_image_check must be {"model": "owner/name or a path to an .onnx file", "threshold": 0.5} '
                "(both optional), or {} for the first installed image-check model")
        if not isinstance(value, dict) or set(value) - {"model", "threshold"}:
            raise ValueError(hint)
        model, threshold = value.get("model", ""), value.get("threshold")
        if not isinstance(model, str):
            raise ValueError(f"{hint}: model must be text")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0 < threshold < 1):
            raise ValueError("studio_image_check: threshold must be a number between 0 and 1 (e.g. 0.5)")
        checked: dict[str, Any] = {"model": model.strip()} if model.strip() else {}
        if threshold is not None:
            checked["threshold"] = float(threshold)
        return checked

    studio_model: str = ""

    @field_validator("studio_model", mode="before")
    @classmethod
    def _studio_model(cls, value: Any) -> str:
        if not isinstance(value, str) or len(value) > 1000:
            raise ValueError("studio_model must be a catalog id (owner/name[@version]) or a path, or empty")
        return value.strip()

    storyboard_picture_side: int = 512

    @field_validator("storyboard_picture_side", mode="before")
    @classmethod
    def _storyboard_picture_side(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 2048 or value % 8:
            raise ValueError("storyboard_picture_side must be a whole number of pixels from 64 to 2048, "
                             f"a multiple of 8 (512 for SD 1.5, 1024 for SDXL), got {value!r}")
        return value

    local_api_enabled: bool = False
    local_api_port: int = LOCAL_API_PORT
    local_api_origins: list[str] = []

    @field_validator("local_api_enabled", mode="before")
    @classmethod
    def _local_api_enabled(cls, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError("local_api_enabled must be true or false")
        return value

    @field_validator("local_api_port", mode="before")
    @classmethod
    def _local_api_port(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1024 <= value <= 65535:
            raise ValueError("local_api_port must be a whole number from 1024 to 65535")
        return value

    @field_validator("local_api_origins", mode="before")
    @classmethod
    def _local_api_origins(cls, value: Any) -> list[str]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ValueError('local_api_origins must be a list of origins, e.g. ["http://127.0.0.1:8000"]')
        origins = [v.strip().rstrip("/") for v in value if v.strip()]
        for origin in origins:
            if not _ORIGIN.match(origin):
                raise ValueError(f"local_api_origins: {origin!r} is not an origin (scheme://host[:port], "
                                 "no path), e.g. http://127.0.0.1:8000")
        return list(dict.fromkeys(origins))

    @field_validator("companion_turn_seconds", mode="before")
    @classmethod
    def _companion_turn_seconds(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 5 <= value <= 3600:
            raise ValueError("companion_turn_seconds must be a whole number of seconds from 5 to 3600")
        return value

    @field_validator("catalog_url", mode="before")
    @classmethod
    def _catalog_url(cls, value: Any) -> str:
        if not isinstance(value, str) or (value.strip() and not _URL.match(value.strip())):
            raise ValueError("catalog_url must be an http(s):// or file:// URL, or empty for the bundled catalog")
        return value.strip()

    @field_validator("plugins_disabled", mode="before")
    @classmethod
    def _plugins_disabled(cls, value: Any) -> list[str]:
        if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) and v for v in value):
            raise ValueError("plugins_disabled must be a list of plugin names")
        return sorted(set(value))

    @field_validator("companion_models", mode="before")
    @classmethod
    def _companion_models(cls, value: Any) -> dict[str, str]:
        if (not isinstance(value, dict) or set(value) - set(COMPANION_ROLES)
                or not all(isinstance(v, str) for v in value.values())):
            raise ValueError(f"companion_models must map roles ({', '.join(COMPANION_ROLES)}) to model ids, e.g. "
                             '{"embedding": "owner/model"}')
        return {role: rid.strip() for role, rid in value.items() if rid.strip()}

    @field_validator("companion_voice", mode="before")
    @classmethod
    def _companion_voice(cls, value: Any) -> dict[str, str]:
        if (not isinstance(value, dict) or set(value) - {"engine", "voice"}
                or not all(isinstance(v, str) for v in value.values())):
            raise ValueError('companion_voice must be {"engine": "espeak-ng", "voice": "owner/name"} '
                             "(the voice optional), or {} for the default")
        voice = {key: text.strip() for key, text in value.items() if text.strip()}
        if voice and "engine" not in voice:
            raise ValueError("companion_voice needs the engine that speaks with the voice")
        if "voice" in voice and not _VOICE_ID.match(voice["voice"]):
            raise ValueError(f"companion_voice: {voice['voice']!r} is not a catalog id (owner/name)")
        return voice

    @field_validator("companion_devices", mode="before")
    @classmethod
    def _companion_devices(cls, value: Any) -> dict[str, str]:
        if (not isinstance(value, dict) or set(value) - set(COMPANION_ROLES)
                or not all(isinstance(v, str) and _DEVICE.match(v.strip()) for v in value.values())):
            raise ValueError(f"companion_devices must map roles ({', '.join(COMPANION_ROLES)}) to \"auto\", "
                             '"cpu", "cuda" or "cuda:N", e.g. {"llm": "cpu"}')
        return {role: device.strip() for role, device in value.items() if device.strip() != "auto"}


def _message(error: ValidationError) -> str:
    """The first problem, in the validator's own words (pydantic prefixes them with "Value error, ")."""
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if cause is not None:
        return str(cause)
    where = ".".join(map(str, first["loc"]))
    return f"{where}: {first['msg']}" if where else first["msg"]


def load() -> Settings:
    """The settings as stored, each unreadable one replaced by its default."""
    values: dict[str, Any] = {}
    found = _stored()
    for field, key in KEYS.items():
        stored = found.get(key)
        if stored is None:
            continue
        try:
            Settings.model_validate({field: stored})
        except ValidationError as e:
            log.warning("setting %s is unreadable (%s): using its default", key, _message(e))
            continue
        values[field] = stored
    return Settings.model_validate(values)


def _stored() -> dict[str, Any]:
    """Every stored setting of ``KEYS``, read in one query (the studio loads the settings for each
    picture it draws)."""
    rows = Setting.select().where(Setting.key.in_(list(KEYS.values())))
    return {row.key: json.loads(row.value) for row in rows}


def change(values: Mapping[str, Any], allowed: Iterable[str] | None = None) -> Settings:
    """Validate ``values`` (field → new value) and store them; returns the settings now in force.
    ``allowed``: the fields this caller may change (all by default); others are refused by name."""
    known = list(KEYS) if allowed is None else list(allowed)
    unknown = set(values) - set(known)
    if unknown:
        raise UsageError(f"unknown settings: {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    current = load()
    try:
        checked = Settings.model_validate({**current.model_dump(), **values})
    except ValidationError as e:
        raise UsageError(_message(e)) from None
    for field in values:
        set_setting(KEYS[field], getattr(checked, field))
    return checked


def set_plugin_disabled(name: str, disabled: bool) -> list[str]:
    """Turn plugin ``name`` off (or back on) from the next start; returns the disabled plugins.
    NotFound when no such plugin is loaded; Zishu's own (internal) plugins cannot be turned off."""
    known = {p["name"]: p for p in plugins.describe()}
    if name not in known:
        raise NotFound(f"no plugin {name!r}")
    if known[name]["internal"]:
        raise UsageError(f"{name} is part of Zishu and cannot be disabled")
    names = set(load().plugins_disabled)
    names = names | {name} if disabled else names - {name}
    return change({"plugins_disabled": sorted(names)}).plugins_disabled


def emotion_map_key(rid: str) -> str:
    return f"{EMOTION_MAP_PREFIX}{rid}"


def stored_emotion_map(rid: str) -> dict[str, Any]:
    """The calibration stored for character ``rid`` as written ({} when none or not a JSON object);
    its entries are checked by the caller, which knows the avatar."""
    saved = get_setting(emotion_map_key(rid), {})
    return saved if isinstance(saved, dict) else {}


def store_emotion_map(rid: str, mapping: Mapping[str, Any]) -> None:
    """Store an already checked calibration for character ``rid`` in place of the previous one."""
    set_setting(emotion_map_key(rid), dict(mapping))
