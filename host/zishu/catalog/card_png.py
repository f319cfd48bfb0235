"""The PNG side of character cards: finding the card's text chunk in a PNG image, and writing card
chunks into one (over an image given by the user, or a plain placeholder).

A card rides in a ``tEXt`` chunk named ``chara`` (Character Card V2) or ``ccv3`` (V3) whose text
is base64 of the card's JSON; this module only moves that text in and out of the image, checking
the image's structure and the chunk's checksum (``zishu.catalog.cards`` decodes the text). Every
problem is a CardError naming the file.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

from zishu.errors import CardError

MAX_PNG_BYTES = 20 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")  # in order of preference when reading


def _fail(file: str, problem: str) -> CardError:
    return CardError(f"{file}: {problem}")


def chunk_spans(raw: bytes, file: str) -> Iterator[tuple[bytes, int, int]]:
    """Each chunk of a PNG file as (type, where its body starts, its body's length), up to and
    including IEND, copying nothing (a card's chunk can be checked before it is read)."""
    if not raw.startswith(PNG_SIGNATURE):
        raise _fail(file, "not a PNG image")
    pos = len(PNG_SIGNATURE)
    while pos < len(raw):
        if pos + 8 > len(raw):
            raise _fail(file, "the PNG image is truncated")
        length, kind = struct.unpack(">I4s", raw[pos : pos + 8])
        if pos + 12 + length > len(raw):
            raise _fail(file, f"the PNG image is truncated (its {kind.decode('latin-1')!r} chunk runs past the end)")
        yield kind, pos + 8, length
        if kind == b"IEND":
            return
        pos += 12 + length
    raise _fail(file, "the PNG image is truncated (no IEND chunk)")


def png_chunks(raw: bytes, file: str) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Each chunk of a PNG file as (type, body, the chunk's bytes), up to and including IEND."""
    for kind, start, length in chunk_spans(raw, file):
        yield kind, raw[start : start + length], raw[start - 8 : start + length + 4]


def text_keyword(kind: bytes, body: bytes) -> str | None:
    """The keyword of a tEXt/zTXt/iTXt chunk, None for other chunks."""
    if kind not in (b"tEXt", b"zTXt", b"iTXt"):
        return None
    return body.partition(b"\0")[0].decode("latin-1")


def card_text(raw: bytes, file: str, max_text: int | None = None) -> tuple[str, str]:
    """(keyword, base64 text) of the card in a PNG: ``ccv3`` when present, else ``chara``.

    A card chunk longer than ``max_text`` bytes is refused before it is read (CardError, with the limit).
    """
    found: dict[str, str] = {}
    for kind, start, length in chunk_spans(raw, file):
        if kind != b"tEXt":
            continue
        keyword = raw[start : start + min(length, 80)].partition(b"\0")[0].decode("latin-1")
        if keyword not in CARD_KEYWORDS or keyword in found:
            continue
        text_length = length - len(keyword) - 1
        if max_text is not None and text_length > max_text:
            raise _fail(file, f"the '{keyword}' chunk holds {text_length:,} bytes of text; a card's chunk may "
                              f"hold at most {max_text:,}")
        chunk = raw[start - 4 : start + length + 4]  # type, body and checksum
        if zlib.crc32(chunk[:-4]) != int.from_bytes(chunk[-4:], "big"):
            raise _fail(file, f"the '{keyword}' chunk is damaged (its checksum does not match)")
        found[keyword] = chunk[4 + len(keyword) + 1 : -4].decode("latin-1")
    for keyword in CARD_KEYWORDS:
        if keyword in found:
            return keyword, found[keyword]
    raise _fail(file, "this PNG image has no character card in it (no tEXt chunk named 'chara' or 'ccv3')")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_card_texts(base: bytes, texts: list[tuple[str, bytes]], file: str) -> bytes:
    """The PNG ``base`` with its old card chunks dropped and a ``tEXt`` chunk for each (keyword,
    base64 text) added before IEND; refused when the result would pass ``MAX_PNG_BYTES``."""
    new = b"".join(_chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text) for keyword, text in texts)
    out = bytearray(PNG_SIGNATURE)
    for kind, body, chunk in png_chunks(base, file):
        if text_keyword(kind, body) in CARD_KEYWORDS:
            continue  # the image's old card goes
        if kind == b"IEND":
            out += new
        out += chunk
    if len(out) > MAX_PNG_BYTES:
        raise _fail(file, f"the card image would be {len(out):,} bytes; a PNG card may be at most 20 MiB")
    return bytes(out)


def base_png(image: Path) -> bytes:
    """The image's bytes when it is a PNG (kept as they are), else the image converted to PNG by Pillow."""
    file = str(image)
    try:
        if image.stat().st_size > MAX_PNG_BYTES:
            raise CardError(f"{file}: the image is larger than 20 MiB")
        raw = image.read_bytes()
    except OSError as e:
        raise CardError(f"{file}: cannot read: {e.strerror}") from None
    if raw.startswith(PNG_SIGNATURE):
        return raw
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            converted = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds (UnidentifiedImageError, DecompressionBombError, ...)
        raise CardError(f"{file}: not an image that can carry a card ({e})") from None
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG")
    return buffer.getvalue()


def placeholder_png(name: str) -> bytes:
    """A plain 400×600 picture in a colour of its own for each name."""
    from PIL import Image

    r, g, b = hashlib.sha256(name.encode("utf-8")).digest()[:3]
    buffer = io.BytesIO()
    Image.new("RGB", (400, 600), (64 + r // 2, 64 + g // 2, 64 + b // 2)).save(buffer, format="PNG")
    return buffer.getvalue()
