"""The catalog manifest: one YAML file per resource, as pydantic models (a public contract).

A manifest lives at ``registry_index/resources/<owner>/<name>.yaml``. Its common fields are on
``ResourceBase``; each kind adds a ``spec`` block (``CharacterSpec``, ``Live2DSpec``, ...).
``Resource`` is the union of the six kinds, told apart by ``kind``. Checks that need only one
manifest live here; checks that need the whole catalog or the network live in the toolchain
(``zishu_catalog.validate``).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Annotated, Any, Literal

import semver
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from zishu.ids import ID_PATTERN, MAX_ID_LENGTH  # the one id rule (re-exported: ID_PATTERN is public)

KINDS = ("character", "live2d", "lora", "model", "voice", "plugin")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _semver(value: str) -> str:
    if not semver.Version.is_valid(value):
        raise ValueError(f"{value!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)")
    return value


def _version_range(value: str) -> str:
    if value.strip() in ("", "*"):
        return "*"
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        raise ValueError(
            f"{value!r} is not a version range; write comparisons separated by commas, "
            "e.g. '>=1.0.0,<2' or '==1.2.0' or '*'"
        ) from None
    return value


def _file_name(value: str) -> str:
    """A file name inside an installed version: a plain relative POSIX path, nothing sneaky."""
    if not value:
        raise ValueError("file name is empty")
    if _CONTROL.search(value):
        raise ValueError(f"file name {value!r} contains a NUL or control character")
    if "\\" in value:
        raise ValueError(f"file name {value!r} contains a backslash; use '/' between folders")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"file name {value!r} is an absolute path; use a path relative to the version")
    parts = value.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"file name {value!r} has an empty, '.' or '..' part")
    if value == "manifest.json":
        raise ValueError("file name 'manifest.json' is reserved for the installed manifest")
    if len(value) > 255:
        raise ValueError(f"file name is {len(value)} characters long; at most 255")
    return value


@lru_cache(maxsize=1)
def _spdx():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@lru_cache(maxsize=4096)
def _license(value: str) -> str:
    hint = "; use an SPDX id such as Apache-2.0 or CC-BY-NC-4.0, or LicenseRef-<name> for others"
    try:
        info = _spdx().validate(value, strict=True)
    except Exception:  # noqa: BLE001 - license_expression raises anything on some malformed input ('MIT AND', '()', 'a/b')
        raise ValueError(f"{value!r} is not an SPDX license expression{hint}") from None
    if not value.strip():
        raise ValueError(f"license is empty{hint}")
    unknown = [k for k in info.invalid_symbols if not str(k).startswith("LicenseRef-")]
    if info.errors and not (not unknown and all("Unknown license key" in e for e in info.errors)):
        raise ValueError(f"{value!r} is not an SPDX license expression ({'; '.join(info.errors)}){hint}")
    return value


SemVer = Annotated[str, AfterValidator(_semver)]
VersionRange = Annotated[str, AfterValidator(_version_range)]
FileName = Annotated[str, AfterValidator(_file_name)]
License = Annotated[str, AfterValidator(_license)]
ResourceId = Annotated[str, Field(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]
Tag = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")]
GitHubLogin = Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2048)]
StyleName = Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently drop a field."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FileEntry(Strict):
    name: FileName
    url: Url
    sha256: Sha256 | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    mirrors: list[Url] = Field(default_factory=list, description="Other URLs serving the same bytes.")
    primary: bool = Field(
        False, description="This file's downloads count as installs (default: the first file)."
    )


class Requirement(Strict):
    id: ResourceId
    version: VersionRange = "*"

    def admits(self, version: str) -> bool:
        return self.version == "*" or SpecifierSet(self.version).contains(version, prereleases=True)


class Version(Strict):
    version: SemVer
    released: dt.date
    files: list[FileEntry] = Field(default_factory=list)
    requires: list[Requirement] = Field(default_factory=list)
    notes: str | None = Field(None, max_length=5000, description="What changed in this version.")

    @model_validator(mode="after")
    def _unique_names(self) -> Version:
        seen: set[str] = set()
        for f in self.files:
            if f.name in seen:
                raise ValueError(f"file name {f.name!r} appears twice in version {self.version}")
            seen.add(f.name)
        if sum(f.primary for f in self.files) > 1:
            raise ValueError(f"version {self.version} marks more than one file as primary")
        ids = [r.id for r in self.requires]
        if len(ids) != len(set(ids)):
            raise ValueError(f"version {self.version} requires the same resource twice")
        return self

    @property
    def counted_file(self) -> FileEntry | None:
        """The file whose download counts as one install of this version."""
        return next((f for f in self.files if f.primary), self.files[0] if self.files else None)

    @property
    def total_size(self) -> int:
        """The bytes of the files whose size is known (see ``size_exact``)."""
        return sum(f.size or 0 for f in self.files)

    @property
    def size_exact(self) -> bool:
        """Whether every file's size is known, so ``total_size`` is the whole download."""
        return all(f.size is not None for f in self.files)


# ---- spec blocks, one per kind ---------------------------------------------------------------


class LoreEntry(Strict):
    keys: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    content: str
    secondary_keys: list[str] = Field(default_factory=list)
    name: str | None = None
    enabled: bool = True
    constant: bool = Field(False, description="Always injected, whatever the keywords.")
    case_sensitive: bool = False
    priority: int = 0
    extensions: dict[str, Any] = Field(default_factory=dict)


class EmotionTarget(Strict):
    expression: str | None = None
    motion: str | None = None


class CharacterVoice(Strict):
    engine: str = Field(description="TTS engine name, e.g. espeak-ng, gpt-sovits.")
    voice: ResourceId | None = None
    reference_audio: dict[str, FileName] = Field(
        default_factory=dict, description="Emotion tag → reference audio file of this version."
    )


class CharacterLLM(Strict):
    model: ResourceId
    lora: ResourceId | None = Field(None, description="A GGUF LoRA adapter for the model.")
    lora_weight: Annotated[float, Field(ge=-4, le=4)] = Field(1.0, description="How strongly the LoRA applies.")


class CharacterModels(Strict):
    """The models a character uses for the companion's other roles; a role left out uses the default
    (the user's Settings, else the first installed model of that role)."""

    embedding: ResourceId | None = None
    asr: ResourceId | None = None
    vad: ResourceId | None = None


class ImageStyle(Strict):
    lora: ResourceId | None = None
    lora_weight: Annotated[float, Field(ge=-4, le=4)] = 0.8
    prompt_prefix: str = ""
    negative_prompt: str = ""
    style: StyleName | None = Field(None, description="The studio style the character is drawn in (anime, ...).")


class Avatar(Strict):
    live2d: ResourceId | None = None
    image: FileName | None = Field(None, description="An image file of this version.")
    sheet: dict[Annotated[str, Field(min_length=1, max_length=32)], FileName] = Field(
        default_factory=dict, max_length=64,
        description="Emotion name → an image file of this version, shown when the companion shows that emotion.",
    )

    @model_validator(mode="after")
    def _one(self) -> Avatar:
        if (self.live2d is None) == (self.image is None):
            raise ValueError("avatar needs exactly one of 'live2d' or 'image'")
        if self.sheet and self.image is None:
            raise ValueError("avatar.sheet needs a picture avatar ('image'): it is for characters without Live2D")
        return self


class CharacterSpec(Strict):
    persona: str = Field(min_length=1, description="The system prompt: who the character is.")
    scenario: str = ""
    greetings: list[str] = Field(default_factory=list)
    example_dialogue: str = ""
    creator_notes: str = ""
    post_history_instructions: str = ""
    lorebook: list[LoreEntry] = Field(default_factory=list)
    emotions: dict[Annotated[str, Field(min_length=1, max_length=32)], EmotionTarget] = Field(
        default_factory=dict, description="Emotion tag (as the LLM writes it) → Live2D expression/motion."
    )
    voice: CharacterVoice | None = None
    llm: CharacterLLM | None = None
    models: CharacterModels | None = None
    image_style: ImageStyle | None = None
    avatar: Avatar | None = None
    audience: Literal["all-ages", "teen", "adult"] | None = Field(
        None, description="Who the character is made for; 'all-ages' keeps the studio's safe mode on for it."
    )
    extensions: dict[str, Any] = Field(
        default_factory=dict, description="Fields from other formats (e.g. SillyTavern cards) kept as they were."
    )


class Live2DSpec(Strict):
    cubism: Literal[3, 4, 5] = Field(description="Cubism major version of the model files.")
    entry: FileName = Field(description="The .model3.json file, as a path inside the version.")
    expressions: list[str] = Field(default_factory=list)
    motions: list[str] = Field(default_factory=list, description="Motion group names.")


class StyleLora(Strict):
    id: ResourceId
    weight: Annotated[float, Field(ge=-4, le=4)] = 1.0


def _template(value: str) -> str:
    if "{prompt}" not in value:
        raise ValueError("the prompt template must contain {prompt}, where the user's prompt goes")
    return value


class StylePreset(Strict):
    """A studio style: how a prompt is drawn. The same fields serve a style YAML file and a LoRA's
    ``spec.style``; what a field leaves out, the request (or the model's default) decides."""

    name: StyleName | None = Field(None, description="Lowercase a-z, 0-9 and '-' (a LoRA's: its name by default).")
    title: str | None = Field(None, min_length=1, max_length=60, description="The name the style picker shows.")
    prompt: Annotated[str, AfterValidator(_template)] = Field(
        "{prompt}", max_length=2000, description="The prompt template; {prompt} is replaced by the user's prompt.")
    negative: str = Field("", max_length=2000, description="Joined to the user's negative prompt.")
    loras: list[StyleLora] = Field(default_factory=list, max_length=8)
    width: Annotated[int, Field(ge=64, le=4096, multiple_of=8)] | None = None
    height: Annotated[int, Field(ge=64, le=4096, multiple_of=8)] | None = None
    steps: Annotated[int, Field(ge=1, le=200)] | None = None
    guidance: Annotated[float, Field(ge=0, le=30)] | None = None
    scheduler: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 +_.-]{0,39}$")] | None = None


class LoraSpec(Strict):
    target: Literal["llm", "image"]
    base_model: str = Field(min_length=1, description="Catalog id or family of the base model.")
    trigger_words: list[str] = Field(default_factory=list)
    recommended_weight: float | None = None
    style: StylePreset | None = Field(None, description="A studio style that draws with this LoRA (image LoRAs).")

    @model_validator(mode="after")
    def _style_for_images(self) -> LoraSpec:
        if self.style is not None and self.target != "image":
            raise ValueError("spec.style: only an image LoRA (target: image) can carry a studio style")
        return self


ModelFormat = Literal["gguf", "funasr", "diffusers", "safetensors", "onnx", "ckpt", "pytorch", "other"]
# image-check: an image classifier for the studio's safe mode (plugins/zishu_image_check)
# controlnet: a ControlNet for an image model (base_model names its family; a tag "canny", "pose" or
# "depth" says which control pictures it follows); upscale, background: post-processing models;
# video: an image-to-video model (Stable Video Diffusion) a storyboard makes its shots' clips with
ModelRole = Literal["llm", "asr", "tts", "image", "embedding", "vad", "controlnet", "upscale", "background",
                    "image-check", "video"]


class ModelSpec(Strict):
    format: ModelFormat
    role: ModelRole
    base_model: str | None = None
    parameters: Annotated[int, Field(gt=0)] | None = Field(None, description="Parameter count.")
    quantization: str | None = None
    context_length: Annotated[int, Field(gt=0)] | None = None
    languages: list[str] = Field(default_factory=list)
    ram_mb: Annotated[int, Field(gt=0)] | None = Field(None, description="RAM needed to run on CPU.")
    vram_mb: Annotated[int, Field(gt=0)] | None = Field(None, description="VRAM needed on a GPU.")


class VoiceSpec(Strict):
    engine: str = Field(min_length=1, description="TTS engine that speaks with this voice.")
    language: str = Field(min_length=2, description="BCP 47 language tag, e.g. zh-CN.")
    speaker: str | None = None
    sample: Url | None = Field(None, description="A short audio sample to listen to.")


class PluginSpec(Strict):
    distribution: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    wheel: FileName = Field(description="The wheel file of each version.")
    entry_point: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Name in the 'zishu' group.")


# ---- the resource ----------------------------------------------------------------------------


class ResourceBase(Strict):
    id: ResourceId
    name: str = Field(min_length=1, max_length=100)
    summary: str = Field(min_length=1, max_length=300)
    license: License
    maintainers: list[GitHubLogin] = Field(min_length=1)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    description: str | None = Field(None, max_length=50_000, description="Markdown.")
    homepage: Url | None = None
    preview: Url | None = Field(None, description="An image shown on the resource page.")
    versions: list[Version] = Field(min_length=1)

    @model_validator(mode="after")
    def _versions_unique(self) -> ResourceBase:
        seen: set[str] = set()
        for v in self.versions:
            if v.version in seen:
                raise ValueError(f"version {v.version} is listed twice")
            seen.add(v.version)
        return self

    @property
    def owner(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def latest(self) -> Version:
        """The highest version (pre-releases count only when there is nothing else)."""
        parsed = [(semver.Version.parse(v.version), v) for v in self.versions]
        stable = [p for p in parsed if not p[0].prerelease] or parsed
        return max(stable, key=lambda p: p[0])[1]

    def version(self, version: str) -> Version | None:
        return next((v for v in self.versions if v.version == version), None)

    def _each_version_has(self, name: str | None, what: str) -> None:
        if name is None:
            return
        for v in self.versions:
            if v.files and name not in {f.name for f in v.files}:
                raise ValueError(f"{what} {name!r} is not among the files of version {v.version}")


class CharacterResource(ResourceBase):
    kind: Literal["character"]
    spec: CharacterSpec

    @model_validator(mode="after")
    def _files_exist(self) -> CharacterResource:
        if self.spec.avatar:
            self._each_version_has(self.spec.avatar.image, "spec.avatar.image")
            for emotion, picture in self.spec.avatar.sheet.items():
                self._each_version_has(picture, f"spec.avatar.sheet.{emotion}")
        if self.spec.voice:
            for audio in self.spec.voice.reference_audio.values():
                self._each_version_has(audio, "spec.voice.reference_audio")
        return self


class Live2DResource(ResourceBase):
    kind: Literal["live2d"]
    spec: Live2DSpec

    @model_validator(mode="after")
    def _entry_exists(self) -> Live2DResource:
        self._each_version_has(self.spec.entry, "spec.entry")
        return self


class LoraResource(ResourceBase):
    kind: Literal["lora"]
    spec: LoraSpec


class ModelResource(ResourceBase):
    kind: Literal["model"]
    spec: ModelSpec


class VoiceResource(ResourceBase):
    kind: Literal["voice"]
    spec: VoiceSpec


class PluginResource(ResourceBase):
    kind: Literal["plugin"]
    spec: PluginSpec

    @model_validator(mode="after")
    def _wheel_exists(self) -> PluginResource:
        if not self.spec.wheel.endswith(".whl"):
            raise ValueError(f"spec.wheel {self.spec.wheel!r} is not a .whl file")
        for v in self.versions:
            if self.spec.wheel not in {f.name for f in v.files}:
                raise ValueError(f"spec.wheel {self.spec.wheel!r} is not among the files of version {v.version}")
        return self


Resource = Annotated[
    CharacterResource | Live2DResource | LoraResource | ModelResource | VoiceResource | PluginResource,
    Field(discriminator="kind"),
]
RESOURCE = TypeAdapter(Resource)

SCHEMA_ID = "resource.schema.json"


def json_schema() -> dict:
    """The JSON Schema of a manifest, generated from the models (published with the site)."""
    schema = RESOURCE.json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Zishu catalog resource manifest",
        **schema,
    }
