"""SillyTavern PNG character cards as a package format (export only), registered through
``register_package_formats`` like any third party's: the card carries the character's text and
its avatar picture; models, LoRAs and Live2D do not travel in a card. Importing cards stays in
the Characters page's Import (``zishu.companion.characters.import_card``)."""

from __future__ import annotations

from pathlib import Path

from zishu.catalog.cards import manifest_to_card, write_card_png
from zishu.hookspecs import hookimpl
from zishu.resources.versions import file_inside


def write_card(parts, mode: str, out: Path, progress=None) -> Path:
    avatar = parts.character.spec.avatar
    image = file_inside(parts.folder, avatar.image) if avatar and avatar.image else None
    write_card_png(manifest_to_card(parts.character), out, image)
    if progress:
        progress(1, 1, f"wrote {out.name}")
    return out


@hookimpl(trylast=True)
def register_package_formats(register) -> None:
    register("sillytavern-card", (".png",), write_card, None, modes=("standalone",),
             title="SillyTavern character card (PNG)")
