"""AUTOMATIC1111's ``parameters`` text: how a picture's settings travel inside its PNG, so that A1111's
"PNG Info", Civitai and ComfyUI readers show them. Written by ``parameters_text``, read back by
``read_parameters`` (the same parsing A1111 does: the prompt, a ``Negative prompt:`` line, then one
line of ``Key: value`` pairs, a value quoted as JSON when it holds a comma, colon or newline).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')  # A1111's re_param
NEGATIVE = "Negative prompt:"


def quote(value: Any) -> str:
    """A value as A1111 writes it: plain, or JSON-quoted when it holds a comma, colon or newline."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def number(value: float) -> str:
    """7.0 → "7", 7.5 → "7.5" (as A1111 shows CFG scale)."""
    return f"{value:g}"


def parameters_text(prompt: str, negative_prompt: str, fields: Mapping[str, Any]) -> str:
    """The ``parameters`` text: ``fields`` in order (Steps, Sampler, CFG scale, Seed, Size, Model
    hash, Model, …); None values are left out."""
    line = ", ".join(f"{key}: {quote(value)}" for key, value in fields.items() if value is not None and value != "")
    negative = f"\n{NEGATIVE} {negative_prompt}" if negative_prompt else ""
    return f"{prompt}{negative}\n{line}"


def read_parameters(text: str) -> dict[str, str]:
    """``{"Prompt", "Negative prompt", and each key}`` from a ``parameters`` text, as A1111 parses it."""
    *lines, last = text.strip().split("\n")
    if len(PARAM.findall(last)) < 3:  # no settings line: all of it is the prompt
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    in_negative = False
    for line in lines:
        if line.startswith(NEGATIVE):
            in_negative, line = True, line[len(NEGATIVE):].strip()
        (negative if in_negative else prompt).append(line)
    found = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in PARAM.findall(last):
        value = value.strip()
        if value[:1] == '"' and value[-1:] == '"':
            value = json.loads(value)
        found[key.strip()] = value
    return found
