"""What a loaded model of each kind offers: the calls the companion, the studio and ``zishu run``
make on whatever an engine's ``load`` returned.

Engines return objects with these methods (duck-typed; the Protocols below are the contract):

    llm        chat(messages, options) -> Iterator[str]          text pieces, as they are generated
               count_tokens(text) -> int, context_length: int    optional: the model's tokenizer and
                                                                 context (``token_counter`` falls back
                                                                 to an estimate when an engine lacks them)
    embedding  embed(texts) -> list[list[float]]                 one vector per text
    asr        transcribe(pcm, language) -> Transcript           a whole utterance
               stream(chunks, language) -> Iterator[Transcript]  live partials (engines with "streaming")
    tts        speak(text, voice, emotion, speed) -> Iterator[AudioChunk]
               voices() -> list[str]
    image      draw(request, progress, cancelled) -> list[PIL.Image.Image]
    vad        speech(pcm) -> list[tuple[float, float]]           speech segments, in seconds
    upscale    upscale(image, scale) -> PIL.Image.Image           ``scale`` times as wide and high
    background remove_background(image) -> PIL.Image.Image        RGBA: the subject kept, the rest clear
    video      animate(request, progress, cancelled) -> list[PIL.Image.Image]
                                                                 a clip's frames from one picture
                                                                 (engines with "i2v"; ``VideoRequest``)

Audio crosses this boundary as 16-bit little-endian mono PCM ``bytes`` (what a WebSocket carries
and a WAV file holds), with its sample rate; ASR input is 16 kHz.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .api import ModelRef

ASR_SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ChatOptions:
    """Sampling settings for one reply; ``stop`` ends the reply before any of these strings.

    ``deadline`` (a ``time.monotonic()`` value) and ``cancelled`` bound the reply's time: an engine
    waits for a busy model no longer than the deadline (then raises EngineError), and ends the reply
    at its next piece once the deadline passes or ``cancelled()`` is true (the session closed, the
    HTTP client went away)."""

    max_tokens: int = 512
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    deadline: float | None = field(default=None, compare=False)
    cancelled: Callable[[], bool] | None = field(default=None, compare=False)
    # A JSON Schema the reply must follow. An engine that can holds the model to it while it generates
    # (llama-cpp: a grammar made from the schema), so the reply always parses; one that cannot ignores
    # it, so callers still check what comes back.
    json_schema: dict | None = field(default=None, compare=False)

    def over(self) -> bool:
        """Whether the reply should end now: its deadline passed or it was cancelled."""
        import time

        return ((self.deadline is not None and time.monotonic() >= self.deadline)
                or (self.cancelled is not None and self.cancelled()))


class ChatModel(Protocol):
    """A loaded chat model. Besides ``chat`` an engine may offer ``count_tokens(text) -> int`` (the
    model's own tokenizer) and ``context_length`` (the most tokens prompt and reply may hold
    together); callers reach both through ``token_counter``, which estimates when they are missing."""

    def chat(self, messages: list[dict], options: ChatOptions | None = None) -> Iterator[str]:
        """``messages`` as [{"role": "system"|"user"|"assistant", "content": str}], rendered with
        the model's own chat template; yields the reply's text as it is generated. The generator may
        return why the reply ended ("stop", or "length" when cut at ``max_tokens``)."""


DEFAULT_CONTEXT_TOKENS = 4096  # the context assumed for a chat model that does not say its own


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated from its characters for an engine without a tokenizer: about
    three ASCII characters a token (English BPE averages four) and one token for any other character
    (a CJK character is one or two), so the estimate leans high."""
    ascii_chars = sum(ch.isascii() for ch in text)
    return ascii_chars // 3 + (len(text) - ascii_chars) + 1


@dataclass(frozen=True)
class TokenCounter:
    """How a chat model counts: ``count(text)`` tokens, ``context_length`` the most it holds;
    ``exact`` when both come from the model itself."""

    count: Callable[[str], int]
    context_length: int
    exact: bool


def token_counter(model: Any) -> TokenCounter:
    """The model's own ``count_tokens`` and ``context_length`` when it offers them, else
    ``estimate_tokens`` and ``DEFAULT_CONTEXT_TOKENS``."""
    count = getattr(model, "count_tokens", None)
    context = getattr(model, "context_length", None)
    if not isinstance(context, int) or isinstance(context, bool) or context <= 0:
        context = None
    return TokenCounter(count=count if callable(count) else estimate_tokens,
                        context_length=context or DEFAULT_CONTEXT_TOKENS,
                        exact=callable(count) and context is not None)


class EmbeddingModel(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]: ...


def texts_to_embed(texts: object, label: str) -> list[str]:
    """What ``embed`` was given, checked the same way by every embedding engine: a list of non-empty
    strings (a lone string is refused rather than embedded letter by letter); raises EngineError."""
    from zishu.errors import EngineError

    if isinstance(texts, str):
        raise EngineError(f"{label}: embed takes a list of texts, not one string")
    if not isinstance(texts, Iterable):
        raise EngineError(f"{label}: embed takes a list of texts, not {type(texts).__name__}")
    checked = list(texts)
    for i, text in enumerate(checked):
        if not isinstance(text, str) or not text:
            raise EngineError(f"{label}: text {i} is {text!r}; every text must be a non-empty string")
    return checked


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str | None = None  # as the model tags it, e.g. "zh", "en"
    emotion: str | None = None  # SenseVoice's tag, e.g. "HAPPY", "NEUTRAL"
    event: str | None = None  # SenseVoice's audio event, e.g. "Speech", "Laughter"
    final: bool = True  # False for a streaming partial that may still change


class SpeechRecognizer(Protocol):
    def transcribe(self, pcm: bytes, language: str = "auto") -> Transcript: ...

    def stream(self, chunks: Iterable[bytes], language: str = "auto") -> Iterator[Transcript]: ...


@dataclass(frozen=True)
class AudioChunk:
    pcm: bytes  # int16 little-endian mono
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class SpeechSynthesizer(Protocol):
    def speak(self, text: str, voice: str | None = None, emotion: str | None = None,
              speed: float = 1.0) -> Iterator[AudioChunk]:
        """Yields audio as it is synthesised, so playback can start before the end."""

    def voices(self) -> list[str]: ...


@dataclass(frozen=True)
class ImageRequest:
    """One drawing: ``batch`` pictures of ``width`` × ``height`` in ``steps`` steps.

    ``scheduler`` is a sampler name the engine lists in ``EngineInfo.schedulers`` (None: the model's
    own). ``loras`` are applied for this request only, each (resolved LoRA, weight); the pipeline
    stays loaded with none. ``preview(step, steps, image)``, when given, is called every
    ``preview_every`` steps with a small PIL image of the picture so far (the studio's live preview).
    """

    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    guidance: float = 7.0
    seed: int | None = None
    batch: int = 1
    extra: dict = field(default_factory=dict, compare=False)  # engine-specific settings
    scheduler: str | None = None
    loras: tuple[tuple[ModelRef, float], ...] = ()
    preview: Callable[[int, int, Any], None] | None = field(default=None, compare=False)
    preview_every: int = 5
    # Drawing from a picture (engines with the "img2img", "inpaint" or "controlnet" capability).
    # init_image: start from this picture (img2img); with mask_image, repaint only where the mask is
    # white (inpaint). strength: how far from init_image to go, 0 (unchanged) to 1 (all new).
    # control_image: a picture the drawing follows (ControlNet): for "canny" any picture (its edges are
    # found), for "pose" and "depth" an OpenPose skeleton or a depth map, used as it is.
    # control_model: the ControlNet to use (a ModelRef or a path), found by the host for the model's family.
    init_image: Any = field(default=None, compare=False)  # PIL.Image.Image
    mask_image: Any = field(default=None, compare=False)  # PIL.Image.Image, white = repaint
    strength: float = 0.75
    control_image: Any = field(default=None, compare=False)  # PIL.Image.Image
    control_kind: str | None = None  # one of CONTROL_KINDS
    control_scale: float = 1.0
    control_model: Any = field(default=None, compare=False)  # ModelRef or path of a ControlNet


CONTROL_KINDS = ("canny", "pose", "depth")


class ImageGenerator(Protocol):
    def draw(self, request: ImageRequest, progress: Callable[[int, int], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> list:
        """Images for ``request``; ``progress(step, steps)`` after each step; raises JobCancelled
        between steps once ``cancelled()`` is true."""


@dataclass(frozen=True)
class VideoRequest:
    """One clip made from a picture (image to video): ``frames`` frames of ``width`` × ``height``,
    meant to play at ``fps``, in ``steps`` denoising steps. ``motion`` (0 to 255, Stable Video
    Diffusion's motion bucket) says how much moves; ``seed`` None draws a random one."""

    image: Any  # PIL.Image.Image: the first frame, scaled to width × height by the engine
    width: int = 1024
    height: int = 576
    frames: int = 14
    fps: int = 7
    steps: int = 25
    motion: int = 127
    seed: int | None = None
    extra: dict = field(default_factory=dict, compare=False)  # engine-specific settings


class VideoGenerator(Protocol):
    def animate(self, request: VideoRequest, progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> list:
        """The clip's frames (PIL images) for ``request``; ``progress(step, steps)`` after each
        step; raises JobCancelled between steps once ``cancelled()`` is true."""


class VoiceActivity(Protocol):
    def speech(self, pcm: bytes) -> list[tuple[float, float]]: ...


class Upscaler(Protocol):
    def upscale(self, image: Any, scale: float | None = None) -> Any:
        """``image`` (PIL) enlarged: by the model's own factor, or resized from it to ``scale`` times
        the size when given."""


class BackgroundRemover(Protocol):
    def remove_background(self, image: Any) -> Any:
        """``image`` (PIL) as RGBA with its background made transparent (the model's mask as alpha)."""
