"""A companion session: one character with its engines loaded, listening and answering.

``open_companion`` chooses and loads what a character needs: its LLM (and LoRA), its voice, an
ASR model and a VAD for the microphone, an embedding model for memory. For each role the choice is,
in order: what the caller asked for, what the character names, the user's setting
(``companion.models``), the first installed model of that role. Speech falls back to espeak-ng,
which needs no model; memory falls back to the LLM's own GGUF through ``llama-cpp-embed``.

``Session`` is what a window (or a test) talks to, whatever carries the bytes:

    session.say(text)          a typed message: the reply's events follow
    session.regenerate(id)     reply ``id`` answered again, as a new alternative: its events follow
    session.hear(pcm)          microphone audio, 16 kHz mono int16, in chunks of any size (queued)
    session.heard(n)           the window finished playing reply sentence ``n - 1``
    session.playing()          the window began playing the reply
    session.barge_in(played)   the window stopped playback because the user cut in
    session.events()           the events, in order (the pipeline's plus the ones below)

    {"type": "speech_start"}                                   the user began speaking
    {"type": "transcript", "text", "language", "emotion"}      what the ASR heard
    {"type": "latency", "latency": {...}, "summary": {...}}    a turn's stages and the session's p50/p95
    {"type": "error", "code", "message"}                       a turn failed; the session goes on

Turns run one at a time on the session's own thread: the microphone and the window never wait.
Microphone audio is only queued by ``hear``; the voice detector (``Listener``) runs on a second
thread of the session's own, so the caller's thread (an HTTP worker) returns at once and the
number of threads stays two per session however many requests bring audio. A session holds at
most ``MAX_QUEUED_AUDIO`` bytes not yet heard; ``hear`` refuses more with ``Busy``.
"""

from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from zishu.engines import use
from zishu.engines.kinds import SpeechRecognizer, SpeechSynthesizer, VoiceActivity
from zishu.errors import Busy, UsageError, ZishuError
from zishu.settings import COMPANION_ROLES, KEYS

from .brain import Character
from .limits import checked_message
from .listen import BothClassifier, EnergyClassifier, Listener, ModelClassifier, SpeechStarted, Utterance
from .pipeline import STAGES, Conversation

log = logging.getLogger(__name__)

ROLES = COMPANION_ROLES
SETTING = KEYS["companion_models"]  # where Settings.companion_models is stored: {"llm": id, "asr": id, ...}
_CLOSE = object()
_END_OF_AUDIO = object()
MAX_QUEUED_AUDIO = 30 * 16000 * 2  # bytes: 30 s of microphone audio waiting for the voice detector


def installed_models(registry) -> dict[str, list[str]]:
    """role → the installed model ids of that role, in id order."""
    from zishu.catalog.manifest import ModelSpec
    from zishu.resources.install import manifest_of

    found: dict[str, list[str]] = {}
    for rid, versions in sorted(registry.load().items()):
        if not any(v.get("kind") == "model" for v in versions.values()):
            continue
        try:
            spec = manifest_of(registry.path(rid)).spec
        except (ZishuError, OSError, ValueError):
            continue
        if isinstance(spec, ModelSpec):  # (a model's versions are all models)
            found.setdefault(spec.role, []).append(rid)
    return found


def choose_models(runtime, character: Character, asked: dict | None = None) -> dict[str, str | None]:
    """The model (id or path) for each role; None where nothing is installed."""
    from zishu import settings

    asked = {k: v for k, v in (asked or {}).items() if v}
    unknown = set(asked) - set(ROLES)
    if unknown:
        raise UsageError(f"unknown model roles: {', '.join(sorted(unknown))} (known: {', '.join(ROLES)})")
    picked = character.spec.models
    own = {"llm": character.spec.llm.model if character.spec.llm else None,
           **(picked.model_dump(exclude_none=True) if picked else {})}
    saved = settings.load().companion_models
    installed = installed_models(runtime.registry)
    return {role: asked.get(role) or own.get(role) or saved.get(role) or next(iter(installed.get(role, [])), None)
            for role in ROLES}


def no_llm_error(runtime, name: str) -> UsageError:
    """What to do when no language model is installed: the catalog's one LLM named, when it has one,
    and carried as the error's ``install`` (the window's Install button)."""
    from .model_choices import install_advice

    what, rid = install_advice(runtime, "llm")
    return UsageError(f"{name} has no language model: {what}, or choose an installed one in the character's "
                      "editor or in Settings", install=rid)


def no_llm_message(runtime, name: str) -> str:
    """``no_llm_error``'s words."""
    return str(no_llm_error(runtime, name))


@dataclass
class Companion:
    """A character's conversation with its engines loaded; ``asr`` and ``vad`` are None when the
    character cannot hear (no ASR model installed), ``notes`` says what fell back and why."""

    conversation: Conversation
    models: dict[str, str | None]
    asr: SpeechRecognizer | None = None
    vad: VoiceActivity | None = None
    notes: list[str] = field(default_factory=list)


def open_companion(runtime, character: Character, *, models: dict | None = None, speech: bool = True,
                   hearing: bool = True, memory: bool = True, user_name: str = "User",
                   devices: dict | None = None) -> Companion:
    """Load what ``character`` needs; raises ModelNotAvailable-style errors that say what to install.
    ``devices``: role → device for this companion, over the Settings' per-role devices."""
    from zishu import settings

    from .memory import MemoryStore

    chosen = choose_models(runtime, character, models)
    where = {**settings.load().companion_devices, **{k: v for k, v in (devices or {}).items() if v}}
    notes: list[str] = []
    if chosen["llm"] is None:
        raise no_llm_error(runtime, character.name)
    spec_llm = character.spec.llm
    adapters = [(spec_llm.lora, spec_llm.lora_weight)] if spec_llm and spec_llm.lora else []
    llm = use(runtime, "llm", chosen["llm"], adapters=adapters, device=where.get("llm"))
    tts = character_voice(runtime, character, notes) if speech else None
    store = None
    if memory:
        embedder = chosen["embedding"]
        engine = None
        if embedder is None and llm.model is not None and llm.model.format == "gguf":
            embedder, engine = chosen["llm"], "llama-cpp-embed"
            notes.append("memory uses the language model's own embeddings: "
                         "install an embedding model for better recall")
        if embedder is not None:
            embed = use(runtime, "embedding", embedder, engine=engine, device=where.get("embedding")).handle.embed
            store = MemoryStore(runtime.home, embed, embedder=str(embedder))
        else:
            notes.append("no embedding model: memories are kept for this session only")
    asr = vad = None
    if hearing:
        if chosen["asr"] is None:
            notes.append("no speech recognition model installed: type to talk")
        else:
            asr = use(runtime, "asr", chosen["asr"], device=where.get("asr")).handle
            vad = use(runtime, "vad", chosen["vad"], device=where.get("vad")).handle if chosen["vad"] else None
    from zishu import settings

    talk = Conversation(character, llm.handle, tts, store, user_name=user_name,
                        turn_seconds=settings.load().companion_turn_seconds)
    return Companion(talk, chosen, asr, vad, notes)


def character_voice(runtime, character: Character, notes: list[str]) -> SpeechSynthesizer | None:
    """The character's voice, or espeak-ng when it names none or its engine cannot run here."""
    from zishu import settings
    from zishu.errors import EngineError

    voice = character.spec.voice
    default = settings.load().companion_voice
    try:
        if voice is not None:
            return use(runtime, "tts", voice.voice, engine=voice.engine).handle
        if default:
            return use(runtime, "tts", default.get("voice"), engine=default["engine"]).handle
    except (EngineError, ZishuError) as e:
        whose = f"{character.name}'s voice" if voice is not None else "the default voice (Settings)"
        notes.append(f"{whose} cannot be used ({e}); speaking with espeak-ng")
    try:
        return use(runtime, "tts", engine="espeak-ng").handle
    except (EngineError, ZishuError) as e:
        notes.append(f"no voice: {e}")
        return None


def percentiles(turns: list[dict]) -> dict[str, dict[str, float]]:
    """stage → {"p50", "p95", "n"} over the latency records ``turns`` (nearest-rank percentiles)."""
    summary = {}
    for stage in STAGES:
        values = sorted(t[stage] for t in turns if stage in t)
        if values:
            summary[stage] = {"p50": _nearest_rank(values, 0.50), "p95": _nearest_rank(values, 0.95),
                              "n": len(values)}
    return summary


def _nearest_rank(values: list[float], q: float) -> float:
    """The ``q`` quantile of the sorted, non-empty ``values``, by nearest rank."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


class Session:
    """One window talking with one companion. Thread-safe: the transport calls in from its own threads."""

    _ids = itertools.count(1)

    def __init__(self, companion: Companion, *, listener: Listener | None = None) -> None:
        self.id = next(self._ids)
        self.companion = companion
        self.talk = companion.conversation
        self.listener = listener or Listener(
            BothClassifier(ModelClassifier(companion.vad), EnergyClassifier()) if companion.vad else None)
        self.latencies: list[dict] = []
        self.undo_delete: dict | None = None  # the memories "delete all" erased, until undone
        self._events: queue.Queue = queue.Queue()
        self._work: queue.Queue = queue.Queue()
        self._heard = 0  # sentences of the current reply the window finished playing
        self._closed = False
        self._audio: queue.Queue = queue.Queue()  # PCM (or _END_OF_AUDIO) for the listening thread
        self._queued_audio = 0  # bytes in self._audio
        self._audio_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"companion-{self.id}", daemon=True)
        self._thread.start()
        self._listening: threading.Thread | None = None
        if companion.asr is not None:
            self._listening = threading.Thread(target=self._listen, name=f"companion-{self.id}-listen", daemon=True)
            self._listening.start()

    # -- from the window --------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A typed message, at most ``limits.MESSAGE_CHARS`` characters (UsageError beyond)."""
        if not isinstance(text, str) or not text.strip():
            raise UsageError("a message needs some text")
        checked_message(text)
        self.barge_in()
        self._work.put(("say", text.strip(), time.perf_counter(), {}))

    def regenerate(self, turn_id: int) -> None:
        """Answer again: reply ``turn_id`` gets a new alternative; its events follow, as a reply's do."""
        if not isinstance(turn_id, int) or isinstance(turn_id, bool):
            raise UsageError("regenerate takes a message id")
        self._work.put(("regenerate", turn_id, time.perf_counter(), {}))

    def hear(self, pcm: bytes) -> None:
        """Queue microphone audio for the session's listening thread; returns at once."""
        if self.companion.asr is None:
            raise UsageError("this companion cannot hear: no speech recognition model is installed")
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise UsageError(f"hear() takes 16 kHz mono int16 PCM as bytes, not {type(pcm).__name__}")
        pcm = bytes(pcm)
        with self._audio_lock:
            if self._queued_audio + len(pcm) > MAX_QUEUED_AUDIO:
                raise Busy(f"the companion is {self._queued_audio / 32000:.1f} s behind on listening "
                           f"(it queues at most {MAX_QUEUED_AUDIO // 32000} s of audio): send audio as it is "
                           "recorded, in pieces of about 100 ms")
            self._queued_audio += len(pcm)
        self._audio.put(pcm)

    def end_of_audio(self) -> None:
        """The microphone closed: an utterance in progress ends once the audio before it is heard."""
        if self._listening is not None:
            self._audio.put(_END_OF_AUDIO)

    def heard(self, sentences: int) -> None:
        self._heard = max(self._heard, int(sentences))

    def playing(self) -> None:
        latency = self.talk.playback_started()
        if latency is not None:
            self._turn_measured(latency)

    def barge_in(self, played: int | None = None) -> None:
        """Stop the reply in progress; ``played``: sentences the window finished playing."""
        self.talk.interrupt(self._heard if played is None else int(played))

    def events(self, timeout: float | None = None) -> Iterator[dict | None]:
        """Events as they come; ends when the session closes (or yields None after ``timeout``
        seconds without one, so a transport can send a keep-alive)."""
        while True:
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                yield None
                continue
            if event is _CLOSE:
                return
            yield event

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.talk.stop()
            self._work.put(None)
            self._audio.put(None)
            self._events.put(_CLOSE)

    # -- the session's threads --------------------------------------------------------------------

    def _listen(self) -> None:
        """The listening thread: the voice detector over the queued audio, in order."""
        while (chunk := self._audio.get()) is not None:
            try:
                if chunk is _END_OF_AUDIO:
                    heard = self.listener.flush()
                else:
                    with self._audio_lock:
                        self._queued_audio -= len(chunk)
                    heard = self.listener.feed(chunk)
                for event in heard:
                    self._on_heard(event)
            except ZishuError as e:
                self._emit({"type": "error", "code": e.code, "message": str(e)})
            except Exception as e:
                log.exception("companion listening failed")
                self._emit({"type": "error", "code": "ENGINE_FAILED", "message": f"{type(e).__name__}: {e}"})

    def _on_heard(self, event) -> None:
        if isinstance(event, SpeechStarted):
            self._emit({"type": "speech_start"})
            self.barge_in()
        elif isinstance(event, Utterance):  # "endpoint": when the silence after it said the turn was over
            self._work.put(("hear", event.pcm, event.ended_at, {"endpoint": time.perf_counter()}))

    def _run(self) -> None:
        while (job := self._work.get()) is not None:
            what, payload, heard_at, stages = job
            self._heard = 0
            try:
                if what == "hear":
                    assert self.companion.asr is not None  # "hear" work comes only from hear(), which needs it
                    heard = self.companion.asr.transcribe(payload)
                    stages = {**stages, "transcript": time.perf_counter()}
                    self._emit({"type": "transcript", "text": heard.text, "language": heard.language,
                                "emotion": heard.emotion})
                    if not heard.text.strip():
                        continue
                    payload = heard.text
                replying = (self.talk.regenerate(payload) if what == "regenerate"
                            else self.talk.reply(payload, heard_at=heard_at, stages=stages))
                for event in replying:
                    self._emit(event)
                    if event["type"] == "done":
                        self._turn_measured(event["latency"], record=True)
            except ZishuError as e:
                self._emit({"type": "error", "code": e.code, "message": str(e)})
            except Exception as e:
                log.exception("companion turn failed")
                self._emit({"type": "error", "code": "ENGINE_FAILED", "message": f"{type(e).__name__}: {e}"})

    def _turn_measured(self, latency: dict, record: bool = False) -> None:
        """``record``: a new turn's latency; else the last turn's, updated in place (playback)."""
        if record:
            self.latencies.append(latency)
        log.info("companion turn latency (ms): %s", latency)
        self._emit({"type": "latency", "latency": latency, "summary": percentiles(self.latencies)})

    def _emit(self, event: dict) -> None:
        if not self._closed:
            self._events.put(event)
