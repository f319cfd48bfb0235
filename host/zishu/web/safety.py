"""The studio's safety routes: safe mode and the image check as they stand, and the prompt
filter's word lists, which the user edits from Settings (``zishu.studio.safety`` does the work)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from zishu import settings as user_settings
from zishu.errors import UsageError
from zishu.studio import prompt_filter
from zishu.studio.safety import image_check_status

from .api import _body
from .app import runtime

safety = Blueprint("safety", __name__)


@safety.get("/api/studio/safety")
def state():
    """``{"safe_mode", "image_check": {"installed", "model", "message"}, "languages"}``."""
    rt, chosen = runtime(), user_settings.load()
    return jsonify(safe_mode=chosen.studio_safe_mode, image_check=image_check_status(rt.registry, chosen),
                   languages=prompt_filter.languages(rt.home))


@safety.get("/api/studio/filters/<lang>")
def word_list(lang: str):
    """``{"lang", "builtin", "user", "entries"}``: the built-in list, the user's, what applies."""
    return jsonify(prompt_filter.word_list(runtime().home, lang))


@safety.put("/api/studio/filters/<lang>")
def save_word_list(lang: str):
    """``{"text": "one entry a line"}`` replaces the user's list of ``lang`` (``-entry`` removes a
    built-in entry); the empty text removes it."""
    text = _body().get("text")
    if not isinstance(text, str):
        raise UsageError('text: expected the list as a string, one entry a line ({"text": "word\\n# comment"})')
    return jsonify(prompt_filter.save_user_list(runtime().home, lang, text))
