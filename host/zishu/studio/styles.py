"""Studio styles: named presets that say how a prompt is drawn.

A style (``Style``) is a prompt template with ``{prompt}`` where the user's words go, a negative
prompt, LoRAs with weights, and default size, steps, guidance and scheduler. Styles come from
three places, later ones winning by name::

    host/zishu/studio/styles/<name>.yaml    built in (anime, cartoon, realistic, pixel-art)
    a catalog LoRA's spec.style             a LoRA that draws in its own style (never hides a built-in)
    ZISHU_HOME/styles/<name>.yaml           the user's own, written by hand or saved from the app

A style file's name is its style's name (lowercase a-z, 0-9 and '-'). A file that is not a valid
style is left out with a Problem naming the file and the field (``style_problems``); it never hides
the others. Saving writes the file atomically after validating it; deleting moves it to
``ZISHU_HOME/trash/styles/`` so ``restore_style`` can undo it.

What the image job does with a style: ``apply_style(fields, style)`` (the prompt through the
template, negatives joined, the style's LoRAs added, its defaults only where the request left a
field unset), and ``require_loras(style, installed)`` refuses a style whose LoRA is not installed
with the catalog id to install.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from zishu.catalog.manifest import LoraResource, StyleLora, StyleName, StylePreset
from zishu.catalog.reading import field_path, load_yaml
from zishu.errors import ManifestError, NotFound, Problem, ResourceNotAvailable, UsageError, ZishuError
from zishu.files import write_atomic

BUILT_IN = Path(__file__).with_name("styles")
USER_FOLDER = "styles"  # under ZISHU_HOME
TRASH_FOLDER = ("trash", "styles")  # under ZISHU_HOME
SUFFIX = ".yaml"
DEFAULTS = ("width", "height", "steps", "guidance", "scheduler")  # filled only where the request has none
MAX_CATALOG_LORAS = 200  # LoRAs whose manifests are read for a style
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


class Style(StylePreset):
    """A style with its name and title settled; ``source`` says where it came from
    (``built-in``, ``user`` or ``catalog``), ``lora`` the catalog LoRA that carries it."""

    name: StyleName
    title: str = Field(min_length=1, max_length=60)
    _source: str = PrivateAttr("user")
    _lora: str | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        return self._source

    @property
    def lora(self) -> str | None:
        return self._lora

    def shown(self) -> dict[str, Any]:
        """The style as the API shows it: its fields, ``source`` and ``lora``."""
        return {**self.model_dump(mode="json"), "source": self.source, "lora": self.lora}


class LoraCatalog(Protocol):
    """What ``styles`` reads of a catalog (``zishu.catalog.client.CatalogClient`` is one)."""

    def index(self) -> list[dict]: ...

    def resource(self, id: str) -> Any: ...


# ---- reading ---------------------------------------------------------------------------------


def style_name(name: Any) -> str:
    """``name`` checked as a style name; UsageError saying the rule otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(f"{str(name)[:60]!r} is not a style name: use lowercase a-z, 0-9 and '-' "
                         "(at most 40, e.g. watercolor or my-anime)")
    return name


def parse_style(data: Any, file: str, *, name: str, source: str = "user") -> Style:
    """``data`` (a YAML file's mapping) as the style ``name``; ManifestError naming ``file`` and the field."""
    if not isinstance(data, dict):
        raise ManifestError([Problem(file, "", "a style must be a mapping of fields (title, prompt, negative, ...)")])
    given = data.get("name", name)
    if given != name:
        raise ManifestError([Problem(file, "name", f"is {given!r}, but the file is named {name}{SUFFIX}: "
                                                   "a style's name is its file's name")])
    try:
        style = Style.model_validate({**data, "name": name, "title": data.get("title") or _title(name)})
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (a style has: " + ", ".join(Style.model_fields) + ")"
            problems.append(Problem(file, field_path(loc) or "(top level)", msg))
        raise ManifestError(problems) from None
    style._source = source
    return style


def read_style(path: Path, *, display: str | None = None, source: str = "user") -> Style:
    """One style file; ManifestError naming the file (and the field) when it is not a valid style."""
    file = display or str(path)
    name = path.name.removesuffix(SUFFIX)
    if not _NAME.match(name):
        raise ManifestError([Problem(file, "", f"{name!r} is not a style name: name the file with lowercase "
                                               f"a-z, 0-9 and '-', ending in {SUFFIX}")])
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError([Problem(file, "", f"cannot read: {e.strerror}")]) from None
    try:
        loaded = load_yaml(data, file)
    except ManifestError as e:  # the reader speaks of manifests; a style file is not one
        raise ManifestError([Problem(p.file, p.field, p.message.replace(
            "a manifest must be a mapping of fields (id, kind, name, ...)",
            "a style must be a mapping of fields (title, prompt, negative, ...)")) for p in e.problems]) from None
    return parse_style(loaded, file, name=name, source=source)


def built_in_styles() -> dict[str, Style]:
    """The styles shipped with Zishu, by name."""
    return {path.name.removesuffix(SUFFIX): read_style(path, display=f"built-in {path.name}", source="built-in")
            for path in sorted(BUILT_IN.glob(f"*{SUFFIX}"))}


def user_folder(home: Path) -> Path:
    return Path(home) / USER_FOLDER


def user_styles(home: Path) -> tuple[dict[str, Style], list[Problem]]:
    """The user's own styles by name, and a Problem for each file that is not a valid style."""
    found: dict[str, Style] = {}
    problems: list[Problem] = []
    folder = user_folder(home)
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            style = read_style(path, display=f"{USER_FOLDER}/{path.name}")
        except ManifestError as e:
            problems.extend(e.problems)
            continue
        found[style.name] = style
    return found, problems


def catalog_styles(catalog: LoraCatalog | None) -> dict[str, Style]:
    """The styles the catalog's image LoRAs carry in ``spec.style``, by name. A LoRA whose manifest
    cannot be read (the catalog offline, a broken entry) is left out."""
    if catalog is None:
        return {}
    found: dict[str, Style] = {}
    try:
        entries = [e for e in catalog.index() if isinstance(e, dict) and e.get("kind") == "lora"]
    except ZishuError:
        return {}
    for entry in entries[:MAX_CATALOG_LORAS]:
        try:
            resource = catalog.resource(str(entry.get("id")))
        except (ZishuError, OSError, ValueError):
            continue
        if isinstance(resource, LoraResource):
            style = lora_style(resource)
            if style is not None and style.name not in found:
                found[style.name] = style
    return found


def lora_style(lora: LoraResource) -> Style | None:
    """The style a catalog LoRA carries (None when it carries none): its own preset, named after the
    LoRA unless it names itself, drawing with the LoRA at its recommended weight (then the preset's
    other LoRAs), its trigger words put before the prompt when the template has none of them."""
    preset = lora.spec.style
    if preset is None:
        return None
    data = preset.model_dump(exclude_none=True)
    name = preset.name or re.sub(r"[^a-z0-9-]+", "-", lora.id.split("/", 1)[1]).strip("-")[:40].strip("-")
    template = preset.prompt
    triggers = [w.strip() for w in lora.spec.trigger_words if w.strip()]
    if triggers and not any(w in template for w in triggers):
        template = ", ".join(triggers) + ", " + template
    own = StyleLora(id=lora.id, weight=lora.spec.recommended_weight if lora.spec.recommended_weight is not None
                    else 1.0)
    data.update(name=name, title=preset.title or lora.name[:60], prompt=template,
                loras=[own.model_dump(), *(x.model_dump() for x in preset.loras if x.id != lora.id)])
    style = parse_style(data, f"{lora.id}: spec.style", name=name, source="catalog")
    style._lora = lora.id
    return style


def styles(home: Path, catalog: LoraCatalog | None = None) -> dict[str, Style]:
    """Every style by name: the built-ins, the catalog LoRAs' styles (under names no built-in has),
    then the user's own, which replace any of the others by name. Bad user files are left out
    (``style_problems`` names them)."""
    found = built_in_styles()
    for name, style in catalog_styles(catalog).items():
        found.setdefault(name, style)
    found.update(user_styles(home)[0])
    return dict(sorted(found.items()))


def style_problems(home: Path) -> list[Problem]:
    """What is wrong with each of the user's style files that ``styles`` leaves out."""
    return user_styles(home)[1]


def get_style(all_styles: Mapping[str, Style], name: Any) -> Style:
    """The style ``name`` of ``all_styles``; NotFound listing the names there are."""
    style = all_styles.get(style_name(name))
    if style is None:
        raise NotFound(f"there is no style {name!r}; the styles are: {', '.join(all_styles) or 'none'}")
    return style


# ---- saving, deleting, restoring -------------------------------------------------------------


def save_style(home: Path, name: str, data: Any) -> dict[str, Any]:
    """Save ``data`` as the user's style ``name`` (``ZISHU_HOME/styles/<name>.yaml``), replacing
    theirs of that name (and hiding a built-in one). Checked before anything is written.
    Returns ``{"style": Style, "previous": the fields it replaced, or None}``."""
    name = style_name(name)
    file = f"{USER_FOLDER}/{name}{SUFFIX}"
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("source", "lora")}  # what ``shown`` adds
    style = parse_style(data, file, name=name)
    path = user_folder(home) / f"{name}{SUFFIX}"
    previous = None
    if path.is_file():
        try:
            previous = read_style(path, display=file).model_dump(mode="json", exclude_none=True)
        except ManifestError:
            previous = None  # a broken file is replaced by a good one
    fields = style.model_dump(mode="json", exclude_none=True, exclude={"name"})
    if not fields.get("loras"):
        fields.pop("loras", None)
    text = "# A Zishu studio style (the file's name is the style's name).\n" + yaml.safe_dump(
        fields, allow_unicode=True, sort_keys=False, width=100)
    write_atomic(path, text)
    return {"style": style, "previous": previous}


def delete_style(home: Path, name: str) -> dict[str, Any]:
    """Move the user's style ``name`` to the trash (``restore_style`` undoes it). A built-in or
    catalog style cannot be deleted: NotFound says so."""
    name = style_name(name)
    path = user_folder(home) / f"{name}{SUFFIX}"
    if not path.is_file():
        if (BUILT_IN / f"{name}{SUFFIX}").is_file():
            raise NotFound(f"{name} is a built-in style and cannot be deleted; save a style named {name} "
                           "to change it")
        raise NotFound(f"you have no style {name!r} to delete")
    trash = _trash(home)
    trash.mkdir(parents=True, exist_ok=True)
    os.replace(path, trash / path.name)
    return {"deleted": name, "built_in_shown": (BUILT_IN / f"{name}{SUFFIX}").is_file()}


def restore_style(home: Path, name: str) -> str:
    """Bring back the style ``delete_style`` moved to the trash."""
    name = style_name(name)
    trashed = _trash(home) / f"{name}{SUFFIX}"
    if not trashed.is_file():
        raise NotFound(f"{name} is not in the trash: there is nothing to restore")
    path = user_folder(home) / trashed.name
    if path.exists():
        raise UsageError(f"you have a style named {name} again; delete it first to restore the one in the trash")
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(trashed, path)
    return name


def _trash(home: Path) -> Path:
    return Path(home).joinpath(*TRASH_FOLDER)


def _title(name: str) -> str:
    return name.replace("-", " ").capitalize()


# ---- using a style ---------------------------------------------------------------------------


def apply_style(request_fields: Mapping[str, Any], style: Style) -> dict[str, Any]:
    """``request_fields`` drawn in ``style``: the prompt put into the template, the style's negative
    joined to the user's, the style's LoRAs added after the user's (the user's weight wins for a
    LoRA in both), and the style's size, steps, guidance and scheduler where the request has none
    (missing or None). ``style`` is set to the style's name."""
    out = dict(request_fields)
    out["prompt"] = fill_template(style.prompt, str(request_fields.get("prompt") or ""))
    out["negative_prompt"] = join_prompts(request_fields.get("negative_prompt"), style.negative)
    loras = list(request_fields.get("loras") or [])
    have = {_lora_id(x) for x in loras}
    out["loras"] = loras + [x.model_dump() for x in style.loras if x.id not in have]
    for key in DEFAULTS:
        value = getattr(style, key)
        if request_fields.get(key) is None and value is not None:
            out[key] = value
    out["style"] = style.name
    return out


def fill_template(template: str, prompt: str) -> str:
    """``template`` with ``prompt`` in place of ``{prompt}``; with no prompt, the commas and spaces
    left around the empty place are tidied away."""
    prompt = prompt.strip()
    text = template.replace("{prompt}", prompt)
    if not prompt:
        text = re.sub(r"\s*,(\s*,)+", ",", text)
        text = re.sub(r"\s+(?=,)", "", text)
        text = re.sub(r"\s{2,}", " ", text)
    return text.strip().strip(",").strip()


def join_prompts(*parts: Any) -> str:
    """The non-empty ``parts`` joined with ", " (each once)."""
    seen: list[str] = []
    for part in parts:
        text = str(part or "").strip().strip(",").strip()
        if text and text not in seen:
            seen.append(text)
    return ", ".join(seen)


def missing_loras(style: Style, installed: Collection[str] | Mapping[str, Any]) -> list[str]:
    """The catalog ids of ``style``'s LoRAs that are not in ``installed`` (installed resource ids)."""
    return [x.id for x in style.loras if x.id not in installed]


def require_loras(style: Style, installed: Collection[str] | Mapping[str, Any]) -> None:
    """Refuse ``style`` when a LoRA it draws with is not installed: ResourceNotAvailable names the
    catalog ids to install (also as its ``install`` list)."""
    missing = missing_loras(style, installed)
    if missing:
        ids = " ".join(missing)
        raise ResourceNotAvailable(
            f"style {style.name} draws with {'LoRAs' if len(missing) > 1 else 'the LoRA'} {', '.join(missing)}, "
            f"which {'are' if len(missing) > 1 else 'is'} not installed; install with: zishu install {ids}",
            install=missing)


def _lora_id(lora: Any) -> Any:
    return lora.get("id") if isinstance(lora, Mapping) else getattr(lora, "id", lora)
