"""A character's memory: the turns of its conversations (short-term) and the facts it keeps from
them (long-term), with what the memory panel does to them: edit, pin, forget and restore, export,
delete all and undo.

Rows in the app database (``records``) are the truth. Beside them, ``home/memory/`` holds a
ChromaDB index with one collection per character and one vector per live memory, keyed by the
row's id; it is rebuilt from the rows whenever it disagrees with them (a different embedding
model or dimension, vectors missing after a crash). Vectors come only from the ``embed`` function
the store is given (an embedding engine's ``embed``): Chroma's own embedding function is never set.

Recall ranks memories by relevance blended with recency::

    similarity = 1 - cosine distance between the query's vector and the memory's
    recency    = 0.5 ** (age / RECENCY_HALF_LIFE)     age: seconds since last recalled, or created
    score      = similarity + RECENCY_WEIGHT * recency

so recency settles near ties (a fresh memory gains up to 0.1 over a months-old one) without
overriding clear relevance. Pinned memories are always recalled, ahead of the rest and on top of
the ``k`` best unpinned ones: pinning is how the user says "never leave this out".
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import peewee

from zishu.db import database
from zishu.errors import EngineError, NotFound, UsageError

from . import chats
from .records import ROLES, Memory, Turn, export_rows, read_export

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import PyEmbedding  # a vector: a sequence of floats (or ints)

log = logging.getLogger(__name__)

RECENCY_WEIGHT = 0.1
RECENCY_HALF_LIFE = 14 * 86400.0  # seconds
CANDIDATES = 64  # nearest vectors considered per recall (at least 8 * k)
EMBED_BATCH = 64

Embed = Callable[[list[str]], Sequence[Sequence[float]]]


@dataclass(frozen=True)
class Recalled:
    """One memory recall returned, with how it ranked (what the memory panel shows)."""

    id: int
    text: str
    pinned: bool
    similarity: float
    recency: float
    score: float

    def as_dict(self) -> dict:
        return asdict(self)


def recency(age_seconds: float) -> float:
    """1 for a memory used just now, halving every ``RECENCY_HALF_LIFE``."""
    return 0.5 ** (max(0.0, age_seconds) / RECENCY_HALF_LIFE)


def score(similarity: float, age_seconds: float) -> float:
    return similarity + RECENCY_WEIGHT * recency(age_seconds)


def collection_name(character: str) -> str:
    """A Chroma collection name for ``character``: a readable slug of it and a hash of the exact id,
    so ``owner/name`` and ``owner-name`` never share one (``zishu-owner-name-3f2a…``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", character.lower()).strip("-")[:48].strip("-")
    digest = hashlib.sha256(character.encode("utf-8")).hexdigest()[:16]
    return f"zishu-{slug}-{digest}" if slug else f"zishu-{digest}"


class MemoryStore:
    """The memory of every character under ``home``. The app database must be open
    (``zishu.db.open_database``, as ``Runtime`` does). ``embedder`` names the embedding model
    (e.g. its resource id) so that switching models rebuilds the index; ``clock`` gives the time."""

    def __init__(self, home: Path, embed: Embed, *, embedder: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(home) / "memory"
        self.embed = embed
        self.embedder = embedder
        self.clock = clock
        self._client: ClientAPI | None = None
        self._indexes: dict[str, Collection] = {}  # character -> its Chroma collection, once checked
        self._dimension: int | None = None  # of the vectors ``embed`` gave this store
        self._lock = threading.RLock()

    # -- turns ------------------------------------------------------------------------------------

    def record_turn(self, character: str, role: str, text: str, interrupted: bool = False,
                    chat: int | None = None) -> Turn:
        """Store one message. A user turn needs text unless interrupted; an assistant turn is stored
        as it was said, which may be nothing (a reply of only an emotion tag, or cut at max_tokens)."""
        character = _character(character)
        if role not in ROLES:
            raise UsageError(f"a turn's role must be one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(text, str):
            raise UsageError(f"a turn's text must be a string, not {type(text).__name__}")
        if not text.strip() and not interrupted and role == "user":
            raise UsageError(f"a {role} turn needs text (only an interrupted turn may be empty)")
        chat_id = chat if chat is not None else chats.current_chat(character, self.clock).id
        chats.touch(chat_id, self.clock)
        return Turn.create(character=character, chat=chat_id, role=role, text=text, created=self.clock(),
                           interrupted=bool(interrupted))

    def history(self, character: str, limit: int = 10, chat: int | None = None) -> list[Turn]:
        """The last ``limit`` turns of ``chat`` (default: the chat to continue), oldest first: its
        chosen branch only (deleted turns left out, each reply as its chosen alternative)."""
        character = _character(character)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise UsageError(f"history's limit must be a whole number >= 0, not {limit!r}")
        chat_id = chat if chat is not None else chats.current_chat(character, self.clock).id
        return chats.branch(chat_id, limit)

    # -- long-term memories -----------------------------------------------------------------------

    def remember(self, character: str, text: str, turn: Turn | int | None = None) -> Memory:
        """Keep ``text`` as a memory of ``character``. Saying a live memory again (same text, up to
        case and spacing) refreshes it instead of keeping a copy."""
        character, text = _character(character), _text(text)
        turn_id = None if turn is None else self._turn(turn, character).id
        with self._lock:
            existing = self._live(character).where(peewee.fn.LOWER(Memory.text) == text.lower()).first()
            if existing is not None:
                existing.last_used = self.clock()
                existing.save()
                return existing
            vector = self._vectors([text])[0]
            index = self._index(character, len(vector))
            with database.atomic():
                memory = Memory.create(character=character, text=text, created=self.clock(), turn=turn_id)
                index.upsert(ids=[str(memory.id)], embeddings=[vector])
            return memory

    def recall(self, character: str, query: str, k: int = 4) -> list[Recalled]:
        """The memories to bring into a turn about ``query``: every pinned one, then the ``k`` best
        of the others by ``score``; each one returned is marked used now."""
        character, query = _character(character), _text(query, what="a recall query")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise UsageError(f"recall's k must be a whole number >= 1, not {k!r}")
        with self._lock:
            live = {m.id: m for m in self._live(character)}
            if not live:
                return []
            vector = self._vectors([query])[0]
            index = self._index(character, len(vector))
            found = index.query(query_embeddings=[vector], n_results=min(len(live), max(CANDIDATES, 8 * k)),
                                include=["distances"])
            distances = found["distances"]
            assert distances is not None  # asked for with include=["distances"]
            similarity = {int(i): 1.0 - d for i, d in zip(found["ids"][0], distances[0], strict=True)}
            pinned = [i for i, m in live.items() if m.pinned]
            missing = [str(i) for i in pinned if i not in similarity]
            if missing:
                got = index.get(ids=missing, include=["embeddings"])
                embeddings = got["embeddings"]
                assert embeddings is not None  # asked for with include=["embeddings"]
                similarity.update({int(i): _cosine(vector, v) for i, v in zip(got["ids"], embeddings, strict=True)})
            now = self.clock()
            ranked = sorted((self._ranked(live[i], s, now) for i, s in similarity.items() if i in live),
                            key=lambda r: (-r.score, -r.id))
            chosen = [r for r in ranked if r.pinned] + [r for r in ranked if not r.pinned][:k]
            if chosen:
                Memory.update(last_used=now).where(Memory.id.in_([r.id for r in chosen])).execute()
            return chosen

    def memories(self, character: str, include_forgotten: bool = False) -> list[Memory]:
        """A character's memories for the panel: pinned first, then the newest."""
        rows = Memory.select().where(Memory.character == _character(character))
        if not include_forgotten:
            rows = rows.where(Memory.deleted_at.is_null())
        return list(rows.order_by(Memory.pinned.desc(), Memory.created.desc(), Memory.id.desc()))

    def edit(self, memory_id: int, text: str) -> Memory:
        """Change a memory's text (and so its vector)."""
        text = _text(text)
        with self._lock:
            memory = self._memory(memory_id)
            if memory.forgotten:  # no vector while forgotten: ``restore`` embeds the new text
                memory.text = text
                memory.save()
                return memory
            return self._save_indexed(memory, text=text)

    def pin(self, memory_id: int, pinned: bool = True) -> Memory:
        memory = self._memory(memory_id)
        memory.pinned = bool(pinned)
        memory.save()
        return memory

    def forget(self, memory_id: int) -> Memory:
        """Take a memory out of recall; ``restore`` brings it back. The row stays (marked
        forgotten) until ``delete_all``; its vector goes."""
        with self._lock:
            memory = self._memory(memory_id)
            if memory.forgotten:
                return memory
            with database.atomic():
                memory.deleted_at = self.clock()
                memory.save()
                index = self._existing_index(memory.character)
                if index is not None:
                    index.delete(ids=[str(memory.id)])
            return memory

    def restore(self, memory_id: int) -> Memory:
        """Undo ``forget``: the memory is recalled again (its text embedded anew)."""
        with self._lock:
            memory = self._memory(memory_id)
            if not memory.forgotten:
                return memory
            return self._save_indexed(memory, deleted_at=None)

    def _save_indexed(self, memory: Memory, **changes) -> Memory:
        """Apply ``changes`` to a live memory and store its (new) vector with it, in one go."""
        text = changes.get("text", memory.text)
        vector = self._vectors([text])[0]
        index = self._index(memory.character, len(vector))
        with database.atomic():
            for name, value in changes.items():
                setattr(memory, name, value)
            memory.save()
            index.upsert(ids=[str(memory.id)], embeddings=[vector])
        return memory

    # -- export, delete all, import ---------------------------------------------------------------

    def export(self, character: str) -> dict:
        """Everything ``character`` remembers (turns, memories, forgotten ones too) as JSON data."""
        character = _character(character)
        turns = list(Turn.select().where(Turn.character == character).order_by(Turn.id))
        memories = list(Memory.select().where(Memory.character == character).order_by(Memory.id))
        return export_rows(character, turns, memories, self.clock())

    def delete_all(self, character: str) -> dict:
        """Erase ``character``'s turns, memories and vectors; returns their export, which
        ``import_`` takes to undo this."""
        character = _character(character)
        with self._lock:
            exported = self.export(character)
            with database.atomic():
                Memory.delete().where(Memory.character == character).execute()
                Turn.delete().where(Turn.character == character).execute()  # its chats stay, empty
                if self._existing_index(character) is not None:
                    self._chroma().delete_collection(collection_name(character))
                self._indexes.pop(character, None)
            return exported

    def import_(self, character: str, exported: dict) -> dict[str, int]:
        """Add an export's turns and memories to ``character`` (new ids, times kept), embedding the
        live memories again; returns how many of each were added. All or nothing."""
        character = _character(character)
        turns, memories = read_export(exported)
        live = [m for m in memories if m["deleted_at"] is None]
        with self._lock:
            vectors = self._vectors([m["text"] for m in live]) if live else []
            index = self._index(character, len(vectors[0])) if live else None
            with database.atomic():
                new_turn = {}
                chat = chats.current_chat(character, self.clock) if turns else None
                for t in turns:
                    new_turn[t["id"]] = Turn.create(
                        character=character, chat=chat, role=t["role"], text=t["text"], created=t["created"],
                        interrupted=t["interrupted"], latency=t["latency"]).id
                added = []
                for m in memories:
                    added.append(Memory.create(
                        character=character, text=m["text"], pinned=m["pinned"], created=m["created"],
                        last_used=m["last_used"], deleted_at=m["deleted_at"],
                        turn=None if m["turn"] is None else new_turn[m["turn"]]))
                ids = [str(row.id) for row in added if row.deleted_at is None]
                if index is not None:  # None only when no memory is live, so there is nothing to embed
                    for start in range(0, len(ids), EMBED_BATCH):
                        index.upsert(ids=ids[start:start + EMBED_BATCH],
                                     embeddings=vectors[start:start + EMBED_BATCH])
        return {"turns": len(turns), "memories": len(memories)}

    def reindex(self, character: str) -> int:
        """Rebuild ``character``'s vector index from its live memories; returns how many."""
        character = _character(character)
        with self._lock:
            live = list(self._live(character).order_by(Memory.id))
            if not live:
                if self._existing_index(character) is not None:
                    self._chroma().delete_collection(collection_name(character))
                self._indexes.pop(character, None)
                return 0
            vectors = self._vectors([m.text for m in live])
            self._rebuild(character, len(vectors[0]), [str(m.id) for m in live], vectors)
            return len(live)

    # -- the vector index -------------------------------------------------------------------------

    def _chroma(self) -> ClientAPI:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            self.path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(self.path), settings=Settings(anonymized_telemetry=False, allow_reset=False))
        return self._client

    def _existing_index(self, character: str) -> Collection | None:
        if character in self._indexes:
            return self._indexes[character]
        from chromadb.errors import NotFoundError

        try:
            return self._chroma().get_collection(collection_name(character), embedding_function=None)
        except NotFoundError:
            return None

    def _index(self, character: str, dimension: int) -> Collection:
        """``character``'s collection for vectors of ``dimension``, rebuilt from the rows when it was
        made by another embedding model or lacks some of them (checked once per store)."""
        index = self._indexes.get(character)
        if index is not None and (index.metadata or {}).get("dimension") == dimension:
            return index
        index = self._existing_index(character)
        live = list(self._live(character).order_by(Memory.id))
        ids = [str(m.id) for m in live]
        if index is not None:
            meta = index.metadata or {}
            same_model = meta.get("dimension") == dimension and meta.get("embedder") == self.embedder
            if same_model and (not ids or len(index.get(ids=ids, include=[])["ids"]) == len(ids)):
                self._indexes[character] = index
                return index
            log.info("rebuilding the memory index of %s (%s)", character,
                     "vectors missing" if same_model else "made by another embedding model")
        return self._rebuild(character, dimension, ids, self._vectors([m.text for m in live]) if live else [])

    def _rebuild(self, character: str, dimension: int, ids: list[str], vectors: list[PyEmbedding]) -> Collection:
        client, name = self._chroma(), collection_name(character)
        if self._existing_index(character) is not None:
            client.delete_collection(name)
        index = client.create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={"character": character, "dimension": dimension, "embedder": self.embedder})
        for start in range(0, len(ids), EMBED_BATCH):
            index.upsert(ids=ids[start:start + EMBED_BATCH], embeddings=vectors[start:start + EMBED_BATCH])
        self._indexes[character] = index
        return index

    def _vectors(self, texts: list[str]) -> list[PyEmbedding]:
        """``embed(texts)``, checked: one finite, non-zero vector per text, all of this store's
        dimension. Anything else is the embedding engine's fault and says so."""
        who = f"the embedding engine{f' ({self.embedder})' if self.embedder else ''}"
        vectors: list[PyEmbedding] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start:start + EMBED_BATCH]
            returned = self.embed(batch)
            try:
                got = [[float(x) for x in vector] for vector in returned]
            except (TypeError, ValueError) as e:
                raise EngineError(f"{who} returned something that is not a list of vectors of numbers: {e}") from e
            if len(got) != len(batch):
                raise EngineError(f"{who} returned {len(got)} vectors for {len(batch)} texts; "
                                  "it must return one vector per text")
            vectors.extend(got)
        for i, vector in enumerate(vectors):
            if not vector:
                raise EngineError(f"{who} returned an empty vector for text {i}")
            if self._dimension is None:
                self._dimension = len(vector)
            if len(vector) != self._dimension:
                raise EngineError(f"{who} returned a vector of dimension {len(vector)} for text {i}, but "
                                  f"{self._dimension} before; an embedding model's vectors all have one dimension")
            if not all(math.isfinite(x) for x in vector) or not any(vector):
                raise EngineError(f"{who} returned an unusable vector for text {i} (NaN, infinite or all zeros)")
        return vectors

    # -- rows ---------------------------------------------------------------------------------------

    def _live(self, character: str) -> peewee.ModelSelect[Memory]:
        return Memory.select().where((Memory.character == character) & Memory.deleted_at.is_null())

    def _memory(self, memory_id: int) -> Memory:
        memory = Memory.get_or_none(Memory.id == memory_id) if _is_id(memory_id) else None
        if memory is None:
            raise NotFound(f"no memory with id {memory_id!r}")
        return memory

    def _turn(self, turn: Turn | int, character: str) -> Turn:
        turn_id = turn.id if isinstance(turn, Turn) else turn
        row = Turn.get_or_none(Turn.id == turn_id) if _is_id(turn_id) else None
        if row is None:
            raise NotFound(f"no turn with id {turn_id!r}")
        if row.character != character:
            raise UsageError(f"turn {row.id} is from a conversation with {row.character}, not {character}")
        return row

    def _ranked(self, memory: Memory, similarity: float, now: float) -> Recalled:
        age = now - (memory.last_used or memory.created)
        return Recalled(id=memory.id, text=memory.text, pinned=memory.pinned, similarity=similarity,
                        recency=recency(age), score=score(similarity, age))


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _character(character: str) -> str:
    if not isinstance(character, str) or not character.strip():
        raise UsageError(f"a character id must be a non-empty string, not {character!r}")
    return character


def _normal(text: str) -> str:
    return " ".join(text.split())


def _text(text: str, what: str = "a memory") -> str:
    if not isinstance(text, str):
        raise UsageError(f"{what} must be text, not {type(text).__name__}")
    text = _normal(text)
    if not text:
        raise UsageError(f"{what} must not be empty")
    return text


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))  # both of the index's dimension
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


# -- facts worth keeping --------------------------------------------------------------------------

# Where a fact starts, in the user's own words: the fact runs from here to the next such start or
# the end of the sentence. Chinese needs no word boundaries; English ones are matched as words.
_FACT_STARTS = [
    r"我(?:的)?名字(?:是|叫)", r"我叫", r"叫我",
    r"我(?:也|还|很|最|特别|非常|超|真的|一点也)?(?:不|不太)?(?:喜欢|爱|讨厌|害怕)",
    r"我(?:现在)?住在", r"我家在", r"我来自", r"我(?:的)?生日", r"我的(?:工作|职业)是",
    r"我在(?=[^，,。.！!？?；;]{1,15}?(?:工作|上班|上学|读书))", r"我对(?=[^，,。.！!？?；;]{1,10}?过敏)",
    r"\bmy name(?: is|'s)\b", r"\bcall me\b", r"\bi(?:'m| am) called\b",
    r"\bi (?:(?:really|also|do|truly|just|absolutely) )?(?:like|love|enjoy|prefer|hate|dislike)\b",
    r"\bi (?:don't|do not|didn't|never) (?:really )?(?:like|enjoy)\b", r"\bi can't stand\b",
    r"\bi (?:live|lived) (?:in|at)\b", r"\bi(?:'m| am) from\b", r"\bi come from\b", r"\bi grew up in\b",
    r"\bmy birthday\b", r"\bi was born (?:in|on)\b", r"\bmy favou?rite\b",
    r"\bi work (?:as|at|in|for)\b", r"\bmy job is\b", r"\bi(?:'m| am) allergic to\b",
    r"\bmy (?:wife|husband|partner|girlfriend|boyfriend|son|daughter|mother|mom|mum|father|dad|sister"
    r"|brother|dog|cat)(?:'s name)? is\b",
]
# "Remember that …": the fact is what follows, to the end of the sentence.
_REMEMBER = [r"\b(?:please )?remember(?: that)?\b[:,]?", r"\bdon't forget(?: that)?\b[:,]?",
             r"(?:请你?|你要|要)?记住[:：，,]?", r"请你?记得[:：，,]?", r"别忘了[:：，,]?"]
_STARTS = re.compile("|".join(f"(?P<s{i}>{p})" for i, p in enumerate(_FACT_STARTS))
                     + "|" + "|".join(f"(?P<r{i}>{p})" for i, p in enumerate(_REMEMBER)), re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])|(?<=\.)(?=\s|$)")
_QUESTION_EN = re.compile(r"^\s*(?:do|does|did|can|could|would|will|is|are|am|should|have|has|what|where|who"
                          r"|why|how|when|which)\b", re.IGNORECASE)
_QUESTION_ZH = re.compile(r"什么|谁|哪|怎么|为什么|多少|几[岁号个点月]|吗\s*$|呢\s*$")
_TRAILING = re.compile(r"(?:[\s,，、;；:：.。!！]|\b(?:and|but|so|also|plus)\b"
                       r"|而且|并且|但是|可是|不过|还有|所以|然后|和)+$", re.IGNORECASE)
FACT_MAX_CHARS = 160


def facts_worth_keeping(user_text: str) -> list[str]:
    """The first-person facts and preferences in what the user said, in their own words, in order
    and without repeats: "我叫小明，我喜欢喝茶" gives ["我叫小明", "我喜欢喝茶"]; "remember that my
    sister is Mia" gives ["my sister is Mia"].

    The rules: the text is cut into sentences (。！？!?;; or a full stop before a space); a question
    (ending in ?/？, starting with a question word in English, or asking 什么/谁/哪/…/吗 in Chinese)
    keeps nothing; in the others, each fact starts at one of ``_FACT_STARTS`` (我叫, 我喜欢, 我住在,
    我的生日, my name is, I like, I live in, my birthday, …) and runs to the next start or the end of
    the sentence, trailing commas and joining words (and, but, 而且, …) dropped; after "remember
    that"/"记住" the rest of the sentence is the fact. A start with nothing after it keeps nothing,
    and a fact is cut to ``FACT_MAX_CHARS`` (at a space where there is one)."""
    if not isinstance(user_text, str):
        raise UsageError(f"facts_worth_keeping takes the user's text, not {type(user_text).__name__}")
    facts: list[str] = []
    for sentence in _SENTENCE_END.split(user_text):
        sentence = sentence.strip()
        if not sentence or sentence[-1] in "?？" or _QUESTION_EN.match(sentence):
            continue
        starts = list(_STARTS.finditer(sentence))
        for n, start in enumerate(starts):
            remembering = _remembering(start)
            if any(_remembering(s) and s.start() < start.start() for s in starts[:n]):
                continue  # inside a "remember that …", which keeps the whole rest
            end = len(sentence) if remembering or n + 1 == len(starts) else starts[n + 1].start()
            fact = _TRAILING.sub("", sentence[start.end() if remembering else start.start():end]).strip()
            said = fact if remembering else fact[start.end() - start.start():]
            if not re.search(r"\w", said) or _QUESTION_ZH.search(fact):
                continue
            fact = _shortened(fact)
            if fact not in facts:
                facts.append(fact)
    return facts


def _remembering(start: re.Match[str]) -> bool:
    """A "remember that …" start (its group is named r<i>; every alternative of ``_STARTS`` is named)."""
    return (start.lastgroup or "").startswith("r")


def _shortened(fact: str) -> str:
    if len(fact) <= FACT_MAX_CHARS:
        return fact
    cut = fact[:FACT_MAX_CHARS]
    space = cut.rfind(" ")
    return (cut[:space] if space > FACT_MAX_CHARS // 2 else cut).rstrip()
