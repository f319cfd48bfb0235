"""The memory panel's work on an open session: what its character remembers, and changing that.

``SessionMemories(session)`` works on the session's character with the session's memory store
(the one its embedding model feeds); a companion without one is refused with a UsageError that
says why. Every memory id is checked to belong to that character before it is touched, so one
window cannot reach another character's memories.

    memories.list(include_forgotten)    the character's memories
    memories.change(mid, text=..., pinned=...)   edit its text and/or pin it (a field not given stays)
    memories.forget(mid) / restore(mid)
    memories.export()                   (file name, the export document)
    memories.delete_all()               erase the character's turns and memories; kept on the
                                        session until ``undo_delete`` (one level of undo)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zishu.errors import NotFound, UsageError

from .records import Memory

if TYPE_CHECKING:
    from .memory import MemoryStore
    from .session import Session

_KEEP: Any = object()  # a field ``change`` leaves as it is


class SessionMemories:
    def __init__(self, session: Session) -> None:
        store = session.talk.memory
        if store is None:
            raise UsageError("this companion keeps no long-term memory: no embedding model could be loaded")
        self.session = session
        self.store: MemoryStore = store
        self.character = session.talk.character

    def list(self, include_forgotten: bool = False) -> list[Memory]:
        return self.store.memories(self.character.id, include_forgotten=include_forgotten)

    def own(self, mid: int) -> Memory:
        """Memory ``mid``, which must belong to the session's character."""
        found = [m for m in self.store.memories(self.character.id, include_forgotten=True) if m.id == mid]
        if not found:
            raise NotFound(f"{self.character.name} has no memory {mid}")
        return found[0]

    def change(self, mid: int, *, text: Any = _KEEP, pinned: Any = _KEEP) -> Memory:
        """Edit memory ``mid``'s text and/or pin it; the store checks the values."""
        self.own(mid)
        if text is not _KEEP:
            self.store.edit(mid, text)
        if pinned is not _KEEP:
            self.store.pin(mid, pinned)
        return self.own(mid)

    def forget(self, mid: int) -> Memory:
        self.own(mid)
        return self.store.forget(mid)

    def restore(self, mid: int) -> Memory:
        self.own(mid)
        return self.store.restore(mid)

    def export(self) -> tuple[str, dict[str, Any]]:
        """A file name for the download and what the character remembers, as ``MemoryStore.export``."""
        return self.character.id.replace("/", "-") + "-memory.json", self.store.export(self.character.id)

    def delete_all(self) -> dict[str, int]:
        """Erase the character's turns and memories (and this session's history); returns how many."""
        erased = self.store.delete_all(self.character.id)
        self.session.undo_delete = erased
        self.session.talk.history.clear()
        return {"turns": len(erased.get("turns", [])), "memories": len(erased.get("memories", []))}

    def undo_delete(self) -> dict[str, int]:
        """Put back what ``delete_all`` erased in this session; UsageError when there is nothing."""
        erased = self.session.undo_delete
        if erased is None:
            raise UsageError("nothing to undo: no memories were deleted in this session")
        restored = self.store.import_(self.character.id, erased)
        self.session.undo_delete = None
        return restored
