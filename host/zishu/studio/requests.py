"""What a picture request holds, checked once for every interface (REST, the ``image`` job, the
CLI, the A1111 and OpenAI adapters, MCP).

``ImageRequest.parse(data)`` checks the fields on their own (types, ranges, unknown fields) and
raises ``UsageError`` naming the field; ``Studio.prepare`` then checks them against the model
(sizes within its limits, the sampler among its engine's, each LoRA made for its base model)
before anything is queued.

A request remembers which fields its sender set (pydantic's ``model_fields_set``): ``given()`` is
those alone, what a queued job and the gallery's "reuse these settings" keep, so that a style's or a
character's defaults fill only what the user left unset, once, when the request is drawn.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from zishu.errors import UsageError

MAX_BATCH = 8
SIZE_MULTIPLE = 8
MIN_SIDE = 64
MAX_SIDE = 2048  # unless the model's catalog spec says its own ``max_size``
MAX_PROMPT = 4000  # characters
MAX_SEED = 2**32 - 1


class LoraChoice(BaseModel):
    """A LoRA for one request: a catalog id (installed) or a local path, and its weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=1000)
    weight: float = Field(default=1.0, ge=-4, le=4, allow_inf_nan=False)


class ControlChoice(BaseModel):
    """A ControlNet guide: its kind (canny, pose, depth …), the guide picture (a gallery image id or
    a data URL), an optional ControlNet model and how strongly it steers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = Field(min_length=1, max_length=40)
    image: str = Field(min_length=1, max_length=20_000_000)
    model: str | None = Field(default=None, max_length=1000)
    weight: float = Field(default=1.0, ge=0, le=2, allow_inf_nan=False)

    @field_validator("image", mode="before")
    @classmethod
    def _gallery_id(cls, value: Any) -> Any:
        return _id_text(value)


class ImageRequest(BaseModel):
    """One request for ``batch`` pictures. ``model`` is a catalog id or a local path (default: the
    Settings' studio model, else the first image model installed). ``seed`` None (or -1, as A1111
    clients send) draws a random one. ``init_image``/``mask``/``strength``/``control`` are for
    img2img, inpainting and ControlNet (an engine with those capabilities draws them): each picture
    is a gallery image id, a ``data:`` URL or plain base64 (as A1111 clients send). The prompt may be
    left out when ``character`` is given: the character's appearance is then the prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(default="", max_length=MAX_PROMPT)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT)
    style: str | None = Field(default=None, max_length=200)
    character: str | None = Field(default=None, max_length=200)
    loras: tuple[LoraChoice, ...] = Field(default=(), max_length=8)
    width: int = Field(default=512, ge=MIN_SIDE, le=8192)
    height: int = Field(default=512, ge=MIN_SIDE, le=8192)
    steps: int = Field(default=20, ge=1, le=150)
    guidance: float = Field(default=7.0, ge=0, le=30, allow_inf_nan=False)
    seed: int | None = Field(default=None, ge=-1, le=MAX_SEED)
    scheduler: str | None = Field(default=None, max_length=60)
    batch: int = Field(default=1, ge=1, le=MAX_BATCH)
    model: str | None = Field(default=None, max_length=1000)
    init_image: str | None = Field(default=None, max_length=20_000_000)
    mask: str | None = Field(default=None, max_length=20_000_000)
    strength: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    control: ControlChoice | None = None
    _expanded: bool = PrivateAttr(False)  # set by the studio's expanders: never expanded twice

    @property
    def expanded(self) -> bool:
        """Whether the studio's expanders already turned its style and character into its fields."""
        return self._expanded

    @field_validator("width", "height", "steps", "batch", "seed", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, bool) or (value is not None and not isinstance(value, int)):
            raise ValueError(f"must be a whole number, got {value!r}")
        return value

    @field_validator("init_image", "mask", mode="before")
    @classmethod
    def _gallery_id(cls, value: Any) -> Any:
        return _id_text(value)

    @field_validator("width", "height")
    @classmethod
    def _multiple(cls, value: int) -> int:
        if value % SIZE_MULTIPLE:
            raise ValueError(f"must be a multiple of {SIZE_MULTIPLE}, got {value}")
        return value

    @field_validator("seed")
    @classmethod
    def _random(cls, value: int | None) -> int | None:
        return None if value == -1 else value

    @model_validator(mode="after")
    def _something(self) -> ImageRequest:
        if not self.prompt.strip() and not self.character:
            given = "prompt" in self.model_fields_set
            raise ValueError(f"prompt: {'must not be empty' if given else 'required'} (or give a character, "
                             "whose appearance is then the prompt)")
        return self

    @classmethod
    def parse(cls, data: Any) -> ImageRequest:
        """The request in ``data`` (a dict, e.g. a JSON body); UsageError naming the first bad field."""
        if isinstance(data, ImageRequest):
            return data
        if not isinstance(data, dict):
            raise UsageError("an image request must be a JSON object with at least a prompt")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise UsageError(_first_problem(e)) from None

    def params(self) -> dict:
        """The request as JSON-able job parameters (what ``parse`` reads back), defaults included."""
        return self.model_dump(mode="json", exclude_none=True)

    def given(self) -> dict:
        """Only the fields the sender set, JSON-able (``parse`` reads it back with the same fields set)."""
        return self.model_dump(mode="json", exclude_unset=True)


def _id_text(value: Any) -> Any:
    """A picture given as a gallery image id number, as text ("12"); anything else as it is."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _first_problem(error: ValidationError) -> str:
    """"width: must be a multiple of 8, got 100" for the first problem pydantic found."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "request"
    cause = (first.get("ctx") or {}).get("error")
    message = str(cause) if cause is not None else first["msg"]
    if not first["loc"] and cause is not None and str(cause).split(":", 1)[0] in ImageRequest.model_fields:
        return str(cause)  # a check across fields names its field itself
    if first["type"] == "extra_forbidden":
        message = f"unknown field (known: {', '.join(ImageRequest.model_fields)})"
    elif first["type"] == "missing":
        message = "required"
    return f"{where}: {message[0].lower() + message[1:]}"
