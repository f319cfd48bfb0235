"""The companion's memory (zishu.companion.memory) on real parts: the app database migrated by
``open_database`` (through the Runtime), ChromaDB on disk, and vectors from a tiny random-weight
GGUF loaded by the ``llama-cpp-embed`` engine. Random weights still embed the same text to the same
vector and texts sharing a beginning to close ones, so the tests recall facts by the same or
overlapping words: turns stored and read back, facts kept and recalled later, recency, pinning,
forget and restore, edits, delete-all and its undo, characters kept apart, persistence, a new
embedding model, the fact extractor, and every rejection."""

from __future__ import annotations

import math

import pytest

from tiny_gguf import write_tiny_gguf
from zishu.companion.memory import RECENCY_HALF_LIFE, MemoryStore, collection_name, facts_worth_keeping, recency, score
from zishu.companion.records import Memory, Turn
from zishu.db import open_database
from zishu.engines import use
from zishu.errors import EngineError, NotFound, UsageError

DAY = 86400.0
HERO, OTHER = "zishu/hero", "zishu-hero"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embed")
    return {"64": write_tiny_gguf(folder / "embed64.gguf"), "32": write_tiny_gguf(folder / "embed32.gguf", dim=32)}


class Clock:
    """The store's time, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def embed(runtime, models):
    return use(runtime, "embedding", str(models["64"])).handle.embed


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(runtime, embed, clock):
    return MemoryStore(runtime.home, embed, embedder="tiny-64", clock=clock)


def texts(recalled) -> list[str]:
    return [r.text for r in recalled]


def chroma_index(home, character):
    """The character's collection, read straight from ``home/memory`` with Chroma's own client."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(home / "memory"),
                                       settings=Settings(anonymized_telemetry=False, allow_reset=False))
    return client.get_collection(collection_name(character), embedding_function=None)


def test_the_migration_makes_the_tables_the_models_describe(runtime):
    for model in (Turn, Memory):
        columns = {c.name: c for c in runtime.db.get_columns(model._meta.table_name)}
        assert set(columns) == {f.column_name for f in model._meta.sorted_fields}
        for f in model._meta.sorted_fields:
            assert columns[f.column_name].null == f.null, f.name
    assert Turn._meta.table_name == "companion_turn" and Memory._meta.table_name == "companion_memory"


def test_turns_are_kept_and_the_history_is_the_latest_oldest_first(store, clock):
    for i in range(5):
        store.record_turn(HERO, "user", f"question {i}")
        clock.now += 1
        store.record_turn(HERO, "assistant", f"answer {i}")
        clock.now += 1
    cut = store.record_turn(HERO, "assistant", "", interrupted=True)  # interrupted before any audio played
    assert [t.text for t in store.history(HERO, limit=3)] == ["question 4", "answer 4", ""]
    assert store.history(HERO, limit=3)[-1].interrupted and store.history(HERO, limit=0) == []
    assert len(store.history(HERO, limit=100)) == 11 and store.history(OTHER) == []
    cut.latency = {"end_of_speech_to_first_audio": 0.42}
    cut.save()
    assert Turn.get_by_id(cut.id).latency == {"end_of_speech_to_first_audio": 0.42}


def test_a_fact_told_in_one_turn_is_recalled_in_a_later_one(store, clock):
    said = store.record_turn(HERO, "user", "My name is Alice. I live in Paris and I like green tea.")
    facts = facts_worth_keeping(said.text)
    assert facts == ["My name is Alice", "I live in Paris", "I like green tea"]
    kept = [store.remember(HERO, fact, turn=said) for fact in facts]
    assert all(m.turn_id == said.id for m in kept)
    store.record_turn(HERO, "assistant", "Nice to meet you, Alice!")
    clock.now += DAY

    later = store.record_turn(HERO, "user", "I live in Paris now, any tips?")
    recalled = store.recall(HERO, later.text, k=1)
    assert texts(recalled) == ["I live in Paris"]
    assert texts(store.recall(HERO, "My name is Alice, remember?", k=1)) == ["My name is Alice"]
    assert texts(store.recall(HERO, "I like green tea", k=3))[0] == "I like green tea"
    assert Memory.get_by_id(recalled[0].id).last_used == clock.now


def test_recall_blends_similarity_with_recency(store, clock):
    old = store.remember(HERO, "I like green tea")
    clock.now += 60 * DAY
    new = store.remember(HERO, "I like green tea very much")  # close to the query, but not the same text
    far = store.remember(HERO, "The weather is nice today")

    ranked = store.recall(HERO, "I like green tea", k=3)
    assert texts(ranked) == ["I like green tea very much", "I like green tea", "The weather is nice today"]
    by_id = {r.id: r for r in ranked}
    assert by_id[old.id].similarity == pytest.approx(1.0, abs=1e-4)
    assert by_id[new.id].similarity < by_id[old.id].similarity  # the fresher one won on recency
    assert by_id[old.id].recency == pytest.approx(recency(60 * DAY)) and by_id[new.id].recency == 1.0
    for r in ranked:
        assert r.score == pytest.approx(score(r.similarity, (60 * DAY if r.id == old.id else 0.0)))
    assert by_id[far.id].score < by_id[old.id].score  # recency does not outweigh clear relevance

    # recalling a memory makes it recent again: now both are fresh and the exact match wins
    clock.now += 1
    assert texts(store.recall(HERO, "I like green tea", k=1)) == ["I like green tea"]


def test_the_recency_formula():
    assert recency(0) == 1.0 and recency(RECENCY_HALF_LIFE) == pytest.approx(0.5)
    assert recency(-5) == 1.0  # a clock that went back does not make a memory fresher than new
    assert score(0.9, 0) == pytest.approx(1.0) and score(0.9, math.inf) == pytest.approx(0.9)


def test_pinned_memories_are_always_recalled_first(store):
    store.remember(HERO, "I live in Paris")
    store.remember(HERO, "I like green tea")
    birthday = store.remember(HERO, "我叫小明")
    assert texts(store.recall(HERO, "I live in Paris", k=1)) == ["I live in Paris"]

    assert store.pin(birthday.id).pinned
    recalled = store.recall(HERO, "I live in Paris", k=1)
    assert texts(recalled) == ["我叫小明", "I live in Paris"]  # the pinned one, then the k best
    assert recalled[0].pinned and recalled[0].similarity < recalled[1].similarity
    assert next(m.text for m in store.memories(HERO)) == "我叫小明"

    store.pin(birthday.id, pinned=False)
    assert texts(store.recall(HERO, "I live in Paris", k=1)) == ["I live in Paris"]


def test_a_forgotten_memory_is_not_recalled_until_restored(store):
    keep = store.remember(HERO, "I live in Paris")
    gone = store.remember(HERO, "I like green tea")
    assert store.forget(gone.id).forgotten and store.forget(gone.id).forgotten  # twice: still forgotten
    assert texts(store.recall(HERO, "I like green tea", k=4)) == ["I live in Paris"]
    assert [m.id for m in store.memories(HERO)] == [keep.id]
    assert {m.id for m in store.memories(HERO, include_forgotten=True)} == {keep.id, gone.id}

    assert not store.restore(gone.id).forgotten
    assert texts(store.recall(HERO, "I like green tea", k=1)) == ["I like green tea"]
    assert not store.restore(gone.id).forgotten  # restoring a live memory changes nothing


def test_a_store_opened_after_everything_was_forgotten_keeps_working(runtime, embed, store):
    for memory in [store.remember(HERO, "I live in Paris"), store.remember(HERO, "I like green tea")]:
        store.forget(memory.id)
    reopened = MemoryStore(runtime.home, embed, embedder="tiny-64")
    assert reopened.recall(HERO, "I like green tea") == []
    reopened.remember(HERO, "我叫小明")
    assert texts(reopened.recall(HERO, "我叫小明")) == ["我叫小明"]
    assert chroma_index(runtime.home, HERO).count() == 1


def test_saying_a_fact_again_refreshes_it_instead_of_copying_it(store, clock):
    first = store.remember(HERO, "I like green tea")
    clock.now += DAY
    again = store.remember(HERO, "  i like   GREEN tea ")
    assert again.id == first.id and again.last_used == clock.now
    assert len(store.memories(HERO)) == 1


def test_editing_a_memory_embeds_its_new_text(store):
    memory = store.remember(HERO, "I like green tea")
    store.remember(HERO, "The weather is nice today")
    assert store.edit(memory.id, "I live in Paris").text == "I live in Paris"
    recalled = store.recall(HERO, "I live in Paris", k=1)
    assert recalled[0].id == memory.id and recalled[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert store.recall(HERO, "I like green tea", k=2)[0].similarity < 0.99  # the old text's vector is gone

    store.forget(memory.id)
    store.edit(memory.id, "我叫小明")  # a forgotten memory's text changes too; restore embeds it
    store.restore(memory.id)
    assert store.recall(HERO, "我叫小明", k=1)[0].id == memory.id


def test_delete_all_erases_a_character_and_its_export_undoes_it(store, clock):
    said = store.record_turn(HERO, "user", "I live in Paris")
    store.record_turn(HERO, "assistant", "Lovely city", interrupted=True)
    paris = store.remember(HERO, "I live in Paris", turn=said)
    store.pin(paris.id)
    store.forget(store.remember(HERO, "I like green tea").id)
    store.recall(HERO, "I live in Paris")
    before = store.export(HERO)

    exported = store.delete_all(HERO)
    assert exported["turns"] == before["turns"] and exported["memories"] == before["memories"]
    assert store.history(HERO) == [] and store.memories(HERO, include_forgotten=True) == []
    assert store.recall(HERO, "I live in Paris") == []
    assert Memory.get_or_none(Memory.id == paris.id) is None

    assert store.import_(HERO, exported) == {"turns": 2, "memories": 2}
    after = store.export(HERO)
    fields = lambda rows, *drop: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    assert fields(after["turns"], "id") == fields(before["turns"], "id")
    assert fields(after["memories"], "id", "turn") == fields(before["memories"], "id", "turn")
    restored = {m["text"]: m for m in after["memories"]}
    assert restored["I live in Paris"]["turn"] == after["turns"][0]["id"]  # still linked to its turn
    assert restored["I like green tea"]["deleted_at"] is not None  # still forgotten
    assert texts(store.recall(HERO, "I live in Paris", k=1)) == ["I live in Paris"]
    assert texts(store.recall(HERO, "I like green tea", k=4)) == ["I live in Paris"]


def test_two_characters_never_see_each_others_memories(store):
    store.remember(HERO, "I like green tea")
    store.remember(OTHER, "I live in Paris")
    assert texts(store.recall(HERO, "I live in Paris", k=4)) == ["I like green tea"]
    assert texts(store.recall(OTHER, "I like green tea", k=4)) == ["I live in Paris"]
    store.delete_all(OTHER)
    assert texts(store.recall(HERO, "I like green tea")) == ["I like green tea"]
    assert store.recall("zishu/nobody", "I like green tea") == []


@pytest.mark.parametrize("character", [HERO, OTHER, "小明", "a", "x" * 300, "..", "192.168.0.1"])
def test_every_character_id_makes_a_valid_collection_name_of_its_own(store, character):
    name = collection_name(character)
    assert 3 <= len(name) <= 512 and name[0].isalnum() and name[-1].isalnum() and ".." not in name
    assert store.remember(character, "I like green tea").text == "I like green tea"
    assert texts(store.recall(character, "I like green tea")) == ["I like green tea"]
    assert collection_name(HERO) != collection_name(OTHER)


@pytest.mark.filterwarnings("ignore:legacy embedding function config:DeprecationWarning")  # Chroma, refusing
def test_memories_persist_for_a_new_store_and_chroma_never_embeds_by_itself(runtime, embed, store):
    from chromadb.api.client import SharedSystemClient

    store.remember(HERO, "I live in Paris")
    store.remember(HERO, "I like green tea")
    index = chroma_index(runtime.home, HERO)
    assert index.count() == 2 and index.metadata == {"character": HERO, "dimension": 64, "embedder": "tiny-64"}
    with pytest.raises(ValueError, match="You must provide an embedding function"):
        index.add(ids=["x"], documents=["Chroma would have to embed this itself"])

    runtime.db.close()
    SharedSystemClient.clear_system_cache()  # the next client reads Chroma's files again
    database = open_database(runtime.home / "zishu.db")
    try:
        reopened = MemoryStore(runtime.home, embed, embedder="tiny-64")
        assert texts(reopened.recall(HERO, "I like green tea", k=1)) == ["I like green tea"]
        assert {m.text for m in reopened.memories(HERO)} == {"I live in Paris", "I like green tea"}
    finally:
        database.close()


def test_the_index_is_rebuilt_for_another_embedding_model_or_when_vectors_are_missing(runtime, models, store):
    store.remember(HERO, "I live in Paris")
    store.remember(HERO, "I like green tea")

    small = use(runtime, "embedding", str(models["32"])).handle.embed
    switched = MemoryStore(runtime.home, small, embedder="tiny-32")
    recalled = switched.recall(HERO, "I like green tea", k=1)
    assert texts(recalled) == ["I like green tea"] and recalled[0].similarity == pytest.approx(1.0, abs=1e-4)
    index = chroma_index(runtime.home, HERO)
    assert index.metadata["dimension"] == 32 and index.metadata["embedder"] == "tiny-32"
    index.delete(ids=[str(m.id) for m in switched.memories(HERO)])  # as if a crash lost the vectors
    again = MemoryStore(runtime.home, small, embedder="tiny-32")
    assert texts(again.recall(HERO, "I live in Paris", k=2)) == ["I live in Paris", "I like green tea"]
    assert again.reindex(HERO) == 2


@pytest.mark.parametrize("said, facts", [
    ("我叫小明，我喜欢喝茶。", ["我叫小明", "我喜欢喝茶"]),
    ("我的名字是小红。我住在北京，我的生日是五月三号！", ["我的名字是小红", "我住在北京", "我的生日是五月三号"]),
    ("我在腾讯工作，我对花生过敏", ["我在腾讯工作", "我对花生过敏"]),
    ("我不喜欢下雨天", ["我不喜欢下雨天"]),
    ("记住我明天要考试", ["我明天要考试"]),
    ("你知道我叫什么吗", []),
    ("我喜欢什么？", []),
    ("My name is Alice. I live in Paris and I like green tea, coffee, and cake.",
     ["My name is Alice", "I live in Paris", "I like green tea, coffee, and cake"]),
    ("I don't like spicy food but I love sushi", ["I don't like spicy food", "I love sushi"]),
    ("remember that my sister is Mia", ["my sister is Mia"]),
    ("Please remember: I'm vegetarian and I like tofu.", ["I'm vegetarian and I like tofu"]),
    ("How are you? I'm from Lyon. My birthday is May 3.", ["I'm from Lyon", "My birthday is May 3"]),
    ("my favorite color is blue", ["my favorite color is blue"]),
    ("I like green tea. I like green tea!", ["I like green tea"]),
    ("Do you know what I like", []),
    ("I'd like a coffee, please.", []),
    ("I like.", []),
    ("The weather is nice today.", []),
    ("", []),
])
def test_facts_worth_keeping(said, facts):
    assert facts_worth_keeping(said) == facts


def test_a_long_fact_is_cut_at_a_word():
    fact = facts_worth_keeping("I like " + "very " * 60 + "long walks")[0]
    assert len(fact) <= 160 and fact.endswith("very") and fact.startswith("I like very")


def test_bad_input_is_refused_with_a_clear_error(store):
    memory = store.remember(HERO, "I like green tea")
    for call in (lambda: store.edit(999, "x"), lambda: store.pin(999), lambda: store.forget(999),
                 lambda: store.restore(999), lambda: store.edit("1", "x"),
                 lambda: store.remember(HERO, "I live in Paris", turn=999)):
        with pytest.raises(NotFound, match=r"no (memory|turn) with id"):
            call()
    for call, message in [
        (lambda: store.remember(HERO, "  "), "a memory must not be empty"),
        (lambda: store.remember(HERO, None), "a memory must be text"),
        (lambda: store.edit(memory.id, ""), "a memory must not be empty"),
        (lambda: store.recall(HERO, ""), "a recall query must not be empty"),
        (lambda: store.recall(HERO, "tea", k=0), "k must be a whole number >= 1"),
        (lambda: store.history(HERO, limit=-1), "limit must be a whole number >= 0"),
        (lambda: store.record_turn(HERO, "user", " "), "only an interrupted turn may be empty"),
        (lambda: store.record_turn(HERO, "system", "hi"), "role must be one of user, assistant"),
        (lambda: store.record_turn(HERO, "user", b"hi"), "text must be a string"),
        (lambda: store.remember("", "tea"), "character id must be a non-empty string"),
        (lambda: store.history(None), "character id must be a non-empty string"),
        (lambda: store.remember(HERO, "tea", turn=store.record_turn(OTHER, "user", "hi")),
         "is from a conversation with zishu-hero, not zishu/hero"),
        (lambda: facts_worth_keeping(None), "takes the user's text"),
    ]:
        with pytest.raises(UsageError, match=message):
            call()
    assert store.memories(HERO)[0].text == "I like green tea"


@pytest.mark.parametrize("broken, message", [
    (lambda vectors: vectors[:-1], "returned 1 vectors for 2 texts"),
    (lambda vectors: [vectors[0], vectors[1][:-1]], "dimension 63 for text 1, but 64 before"),
    (lambda vectors: [vectors[0], [math.nan] * len(vectors[1])], "unusable vector for text 1"),
    (lambda vectors: [vectors[0], [0.0] * len(vectors[1])], "unusable vector for text 1"),
    (lambda vectors: [vectors[0], []], "empty vector for text 1"),
    (lambda vectors: [vectors[0], ["x"] * 3], "not a list of vectors of numbers"),
])
def test_an_embedding_engine_giving_wrong_vectors_is_named(runtime, embed, broken, message):
    store = MemoryStore(runtime.home, lambda batch: broken(embed(batch)) if len(batch) == 2 else embed(batch),
                        embedder="broken-engine")
    store.remember(HERO, "I like green tea")
    with pytest.raises(EngineError, match=rf"the embedding engine \(broken-engine\).*{message}"):
        store.import_(HERO, {"format": "zishu-companion-memory", "version": 1, "turns": [], "memories": [
            {"text": t, "pinned": False, "created": 1.0, "last_used": None, "turn": None, "deleted_at": None}
            for t in ("I live in Paris", "我叫小明")]})
    assert [m.text for m in store.memories(HERO)] == ["I like green tea"]  # nothing half-imported


def test_an_embedding_engine_changing_its_dimension_midway_is_named(runtime, embed):
    calls = []

    def shrinking(batch):
        calls.append(batch)
        return embed(batch) if len(calls) == 1 else [v[:32] for v in embed(batch)]

    store = MemoryStore(runtime.home, shrinking)
    store.remember(HERO, "I like green tea")
    with pytest.raises(EngineError, match="the embedding engine returned a vector of dimension 32 for text 0, "
                                          "but 64 before"):
        store.recall(HERO, "tea")


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(format="other"), "not a companion memory export"),
    (lambda e: e.update(version=2), "version 2 is not supported"),
    (lambda e: e.update(turns={}), "turns: expected a list"),
    (lambda e: e["turns"][0].update(role="narrator"), r"turns\[0\].role: 'narrator' is not one of"),
    (lambda e: e["turns"][0].pop("created"), r"turns\[0\].created: missing"),
    (lambda e: e["turns"].append(dict(e["turns"][0])), "two turns have the same id"),
    (lambda e: e["memories"][0].update(text=" "), r"memories\[0\].text: a memory's text must not be empty"),
    (lambda e: e["memories"][0].update(pinned="yes"), r"memories\[0\].pinned: 'yes' is not true or false"),
    (lambda e: e["memories"][0].update(turn=12345), r"memories\[0\].turn: 12345 is not the id of a turn"),
    (lambda e: e["memories"].append("I like tea"), r"memories\[1\]: expected an object, got str"),
])
def test_a_broken_export_is_refused_and_nothing_is_imported(store, change, message):
    said = store.record_turn(HERO, "user", "I live in Paris")
    store.remember(HERO, "I live in Paris", turn=said)
    exported = store.delete_all(HERO)
    change(exported)
    with pytest.raises(UsageError, match=message):
        store.import_(OTHER, exported)
    assert store.history(OTHER) == [] and store.memories(OTHER, include_forgotten=True) == []
