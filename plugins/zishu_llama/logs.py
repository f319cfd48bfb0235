"""llama.cpp's own log lines go to Python logging (logger ``zishu_llama.llama_cpp``), never straight
to the terminal: ``route_llama_logs`` installs a callback with ``llama_log_set`` (which covers ggml's
log too), joining the pieces llama.cpp sends (a line may come in several calls, level CONT) into
whole lines, at the logging level that matches llama.cpp's. The logger has a ``NullHandler``, as a
library's should: the app's logging settings decide what is shown (``zishu serve`` shows warnings
and errors in its log), and a command that configures no logging (``zishu chat``) prints none of it.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from contextlib import suppress
from typing import Any

log = logging.getLogger("zishu_llama.llama_cpp")
log.addHandler(logging.NullHandler())  # no "last resort" printing to stderr when nothing is configured

# ggml.h's enum ggml_log_level: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous
# line). llama-cpp-python's own callback still reads the older order (INFO 1 … ERROR 3, DEBUG 4), so it
# prints llama.cpp's warnings to stderr as errors even with verbose=False: the leak this module stops.
LEVELS = {0: logging.INFO, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
CONT = 5

_lock = threading.Lock()
_state: dict[str, Any] = {"callback": None, "pending": "", "level": logging.DEBUG}


def _take(level: int, text: bytes | None) -> None:
    """Add llama.cpp's ``text`` to the line being built; log each line it completes."""
    piece = (text or b"").decode("utf-8", errors="replace")
    with _lock:
        if level != CONT:
            if _state["pending"]:  # a new message: the unfinished one is complete as it is
                log.log(_state["level"], "%s", _state["pending"].rstrip())
                _state["pending"] = ""
            _state["level"] = LEVELS.get(level, logging.DEBUG)
        lines = (_state["pending"] + piece).split("\n")
        _state["pending"] = lines.pop()
        complete = [line for line in lines if line.strip()]
        level_now = _state["level"]
    for line in complete:
        log.log(level_now, "%s", line.rstrip())


def route_llama_logs() -> None:
    """Send llama.cpp's log to ``log`` from now on (idempotent; call after importing llama_cpp,
    whose import installs its own callback that prints errors to stderr)."""
    import llama_cpp

    with _lock:
        if _state["callback"] is not None:
            return

        def callback(level: int, text: bytes | None, _user_data: Any) -> None:
            with suppress(Exception):  # an exception must never cross back into C
                _take(level, text)

        _state["callback"] = llama_cpp.llama_log_callback(callback)  # kept: C holds only a pointer
    llama_cpp.llama_log_set(_state["callback"], ctypes.c_void_p(0))
