"""Server-sent event streams and the cap on how many may be open at once.

cheroot serves a response on one of its worker threads until the response ends, and an event
stream (the job stream, a companion session's events) does not end while its window is open. So
without a cap, about as many open streams as there are workers (32) leave no thread for any other
request: the app stops answering.

Why a cap and not a pool of their own: handing a stream's socket to another pool would mean
reaching into cheroot's connection handling, and a cap does the job with no such coupling. Why
one cap for the app and not one per client: every client of this server is on 127.0.0.1, so a
client cannot be told apart from another by its address; the secret is the same for all of them.

``open_stream(events)`` answers the stream while fewer than the app's ``ZISHU_STREAM_LIMIT``
(``STREAM_LIMIT`` unless the server set it) are open, and raises ``Busy`` (503, code ``BUSY``,
the limit in the message) otherwise. The slot is given back when the server closes the response:
when the stream ends, or when writing to a window that went away fails. A quiet stream writes a
keep-alive comment every ``KEEP_ALIVE`` seconds for that: the first write after the window left
still goes out (the peer answers it with a reset), the next one fails, so a page the user left
frees its slot within about two keep-alives. Short ones matter: every page of the app holds a
stream, so clicking through pages faster than the slots come back would run out of them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from flask import Response, current_app, stream_with_context

from zishu.errors import Busy

STREAM_LIMIT = 16  # event streams open at once; the server keeps twice as many worker threads
KEEP_ALIVE = 2.0  # seconds of quiet between two comments on an event stream (a few bytes each)
_lock = threading.Lock()


class StreamSlots:
    """How many event streams are open, out of ``limit``. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            if self.open >= self.limit:
                raise Busy(f"too many event streams are open (the limit is {self.limit}): "
                           "close other Zishu windows or tabs, then reload this one")
            self.open += 1

    def give_back(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


def stream_slots() -> StreamSlots:
    """This app's ``StreamSlots``, made on first use with ``ZISHU_STREAM_LIMIT``."""
    with _lock:
        found = current_app.config.get("ZISHU_STREAM_SLOTS")
        if found is None:
            limit = int(current_app.config.get("ZISHU_STREAM_LIMIT", STREAM_LIMIT))
            found = current_app.config["ZISHU_STREAM_SLOTS"] = StreamSlots(limit)
        return found


def open_stream(events: Iterator[str]) -> Response:
    """``events`` as a ``text/event-stream`` response holding one of the app's stream slots;
    ``Busy`` when none is free."""
    slots = stream_slots()
    slots.take()
    try:
        response = Response(stream_with_context(events), mimetype="text/event-stream",
                            headers={"X-Accel-Buffering": "no"})
    except BaseException:
        slots.give_back()
        raise
    response.call_on_close(slots.give_back)
    return response
