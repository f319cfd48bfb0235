"""Story → shots by the local language model, its answer held to a JSON schema.

``shots_schema(n)`` asks for exactly ``n`` shots, each ``{"prompt", "narration"}`` with bounded
lengths. It goes to the engine as ``ChatOptions.json_schema``: llama-cpp turns it into a grammar
(``LlamaGrammar.from_json_schema``) so that the model can only write JSON of that shape, and because
every string and the list are bounded, the answer also ends. A model answering garbage therefore
still yields valid JSON; an engine that cannot hold a schema may not, and ``parse_shots`` then
raises one EngineError that says so and what to do, never a traceback.

The image prompt is asked in English (what image models are trained on), the narration in the
story's language (``projects.story_language``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from zishu.engines import ChatOptions
from zishu.errors import EngineError, ResourceNotAvailable, UsageError

from .projects import MAX_SHOTS

PROMPT_CHARS = 240  # most characters of one image prompt the model may write
NARRATION_CHARS = 300
BYTES_PER_CHAR = 4  # a character may come as up to four byte tokens (its UTF-8 bytes), one at a time
SHOT_SYNTAX = 160  # tokens of one shot's keys, quotes and the whitespace the grammar allows between them
LANGUAGES = {"zh": "Chinese (简体中文)", "ja": "Japanese", "ko": "Korean", "en": "English"}
_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def shot_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHOTS:
        raise UsageError(f"shots: must be a whole number from 1 to {MAX_SHOTS}, got {value!r}")
    return value


def _plain_text(most: int) -> dict:
    """A string of 1 to ``most`` characters with no escapes and no control characters: under the
    grammar every token then writes at least one counted character or one of its UTF-8 bytes, so
    ``most`` also bounds the tokens (a JSON escape such as \\u00e9 is one character but several
    tokens, and a model that kept writing them ran past max_tokens and was cut off mid-string)."""
    return {"type": "string", "pattern": r'^[^"\\\x00-\x1f]' + f"{{1,{most}}}$"}


def shots_schema(count: int) -> dict:
    shot = {"type": "object",
            "properties": {"prompt": _plain_text(PROMPT_CHARS), "narration": _plain_text(NARRATION_CHARS)},
            "required": ["prompt", "narration"], "additionalProperties": False}
    return {"type": "object",
            "properties": {"shots": {"type": "array", "items": shot, "minItems": count, "maxItems": count}},
            "required": ["shots"], "additionalProperties": False}


def messages(story: str, count: int, language: str, appearance: str = "") -> list[dict]:
    """The chat that asks for the storyboard."""
    spoken = LANGUAGES.get(language, language)
    who = (f" The main character looks like this (repeat it in every prompt where they appear): {appearance}."
           if appearance else "")
    system = (f"You are a storyboard artist. Split the user's story into exactly {count} shots, in order. "
              "For each shot write \"prompt\": a short English description for an image model (subject, "
              "setting, composition, lighting; no text or letters in the picture), and \"narration\": what "
              f"the narrator says over the shot, one or two sentences in {spoken}.{who} "
              'Answer with JSON only: {"shots": [{"prompt": "...", "narration": "..."}]}')
    return [{"role": "system", "content": system}, {"role": "user", "content": story}]


def parse_shots(text: str, count: int) -> list[dict]:
    """The shots in the model's answer: exactly ``count``, each with a prompt and a narration."""
    found = _JSON_OBJECT.search(text)
    try:
        data = json.loads(found.group(0) if found else text, strict=False)  # raw newlines in strings too
    except json.JSONDecodeError as e:
        if cut_off(text):
            raise EngineError(f"the language model's storyboard was cut off after {len(text):,} characters, before "
                              f"its {count} shots were complete: the model's context window ran out; ask for "
                              "fewer shots, choose a model with a larger context, or write the shots by hand"
                              ) from None
        raise EngineError(f"the language model's storyboard is not valid JSON ({e.msg} at character {e.pos}): "
                          "try again, choose another model, or write the shots by hand") from None
    shots = data.get("shots") if isinstance(data, dict) else None
    if not isinstance(shots, list) or len(shots) != count:
        got = len(shots) if isinstance(shots, list) else "no"
        raise EngineError(f"the language model wrote {got} shots instead of {count}: try again or write them by hand")
    out = []
    for i, shot in enumerate(shots):
        prompt = shot.get("prompt") if isinstance(shot, dict) else None
        narration = shot.get("narration") if isinstance(shot, dict) else None
        if not isinstance(prompt, str) or not prompt.split() or not isinstance(narration, str):
            raise EngineError(f"the language model's shot {i + 1} has no prompt: try again or write it by hand")
        out.append({"prompt": " ".join(prompt.split())[:PROMPT_CHARS],
                    "narration": " ".join(narration.split())[:NARRATION_CHARS]})
    return out


def cut_off(text: str) -> bool:
    """Whether ``text`` is JSON that stops before its end (what a grammar-held answer looks like when
    the context window runs out), rather than something that is no JSON."""
    start = text.find("{")
    if start < 0:
        return False
    answer = text[start:].rstrip()
    try:
        json.loads(answer, strict=False)
    except json.JSONDecodeError as e:
        return e.msg.startswith("Unterminated string") or e.pos >= len(answer)
    return False


def answer_tokens(count: int) -> int:
    """The most tokens ``count`` shots can take under ``shots_schema``'s grammar, so that even a model
    writing noise (byte tokens, the widest whitespace) closes its JSON before max_tokens; llama.cpp
    lowers it to what the context window has left, and a grammar-held answer ends as soon as it can."""
    return count * (BYTES_PER_CHAR * (PROMPT_CHARS + NARRATION_CHARS) + SHOT_SYNTAX) + 64


def write_shots(chat: Any, story: str, count: int, language: str, *, appearance: str = "",
                seed: int | None = None, cancelled: Any = None) -> list[dict]:
    """Ask ``chat`` (a loaded ChatModel) for ``count`` shots of ``story``; the parsed shots."""
    count = shot_count(count)
    options = ChatOptions(max_tokens=answer_tokens(count), temperature=0.7, seed=seed,
                          json_schema=shots_schema(count), cancelled=cancelled)
    text = "".join(chat.chat(messages(story, count, language, appearance), options))
    return parse_shots(text, count)


def pick_llm(runtime: Any, character: Any = None, model: str | None = None) -> str:
    """The model that writes: the one asked for, the character's own LLM, the Settings' companion LLM,
    else the first installed; when none is installed, ResourceNotAvailable naming ``model`` and the
    catalog's LLM to install (the error's ``install``: the window's Install button)."""
    from zishu import settings
    from zishu.companion.model_choices import install_advice
    from zishu.companion.session import installed_models

    own = character.spec.llm.model if character is not None and character.spec.llm else None
    chosen = model or own or settings.load().companion_models.get("llm")
    if chosen:
        return str(chosen)
    found = installed_models(runtime.registry).get("llm")
    if not found:
        what, rid = install_advice(runtime, "llm")
        raise ResourceNotAvailable(f"model: no language model is installed to write the storyboard; {what}, or "
                                   "write the shots by hand", install=rid)
    return found[0]


def write_storyboard(host: Any, boards: Any, project_id: int, count: Any, *, model: str | None = None,
                     cancelled: Any = None) -> list:
    """The project's shots written by the language model (the old list one Undo away)."""
    from zishu.engines import use
    from zishu.studio.characters import appearance

    count = shot_count(count)
    project = boards.get(project_id)
    character = boards.character_of(project)
    ready = use(host, "llm", pick_llm(host, character, model))
    shots = write_shots(ready.handle, project.story, count, project.language,
                        appearance=appearance(character) if character is not None else "",
                        seed=project.seed, cancelled=cancelled)
    return boards.replace_shots(project_id, shots, label="write the shots with the model")
