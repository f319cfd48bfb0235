"""Wakes whoever watches the job table (the live job stream) the moment a job changes here.

Changes made in this process notify at once; changes made by a ``zishu worker`` elsewhere are
seen by the watchers' periodic look at the table (``wait`` returns after ``timeout`` regardless).
"""

from __future__ import annotations

import threading


class Changes:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.serial = 0

    def notify(self) -> None:
        with self._cond:
            self.serial += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Block until something changed after ``seen`` (or ``timeout``); return the latest serial."""
        with self._cond:
            self._cond.wait_for(lambda: self.serial != seen, timeout)
            return self.serial


changes = Changes()
