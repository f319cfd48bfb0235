"""Byte sizes for people, one way everywhere: IEC units (powers of 1024), one decimal.

    byte_size(0)            "0 B"
    byte_size(1023)         "1023 B"
    byte_size(1024)         "1.0 KiB"
    byte_size(123_456)      "120.6 KiB"
    byte_size(3 * 2**30)    "3.0 GiB"
    byte_size(None)         "—"

The CLI, the app's pages, the catalog site and error messages use ``byte_size``; the app's
JavaScript has one mirror of it, ``formatBytes`` in ``web/static/sizes.js``, and a test runs both
on the same numbers. Rounding is half up on exact integers (no float ties), so both agree, and a
value that would round to 1024.0 of a unit is shown as 1.0 of the next one.

A download's size (one file, a version, or a character with what it requires) may be partly
unknown: hub files whose size the catalog does not carry are measured at download. ``download_size``
never shows an unknown part as "0 B":

    download_size(0, exact=True)               "nothing to download"
    download_size(0, exact=False)              "size unknown"
    download_size(400 * 2**20, exact=False)    "at least 400.0 MiB"
    download_size(400 * 2**20, exact=True)     "400.0 MiB"

``formatDownloadSize`` in ``web/static/sizes.js`` mirrors it.
"""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
UNKNOWN = "—"
SIZE_UNKNOWN = "size unknown"


def byte_size(n: int | float | None) -> str:
    """``n`` bytes as "1023 B", "1.5 KiB", "8.0 MiB", "2.3 GiB"; "—" when unknown."""
    if n is None:
        return UNKNOWN
    n = int(n)
    if n < 0:
        return "-" + byte_size(-n)
    if n < 1024:
        return f"{n} B"
    for power, unit in enumerate(UNITS[1:], start=1):
        step = 1024**power
        tenths = (n * 20 + step) // (2 * step)  # n / step in tenths, rounded half up, exactly
        if tenths < 10240 or unit == UNITS[-1]:
            return f"{tenths // 10}.{tenths % 10} {unit}"
    raise AssertionError("unreachable")


def download_size(known: int | None, *, exact: bool) -> str:
    """What a download weighs: ``known`` bytes, "at least" that when some part's size is
    unknown (``exact`` False), "size unknown" when nothing of it is known, and "nothing to
    download" for a resource without files (a built-in voice)."""
    if not known:
        return "nothing to download" if exact else SIZE_UNKNOWN
    label = byte_size(known or 0)
    return label if exact else f"at least {label}"
