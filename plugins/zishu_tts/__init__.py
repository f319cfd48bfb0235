"""Zishu's built-in text-to-speech engines, registered through the ``zishu`` entry point ``tts``.

It owns four ``tts`` engines, each loading to a handle with ``speak(text, voice, emotion, speed)``
(int16 mono ``AudioChunk``s, piece by piece as they are synthesised) and ``voices()``:

- ``espeak-ng`` (``espeak.py``): the offline default, through the ``espeak-ng`` command; no model;
- ``piper`` (``piper.py``): Piper neural voices (a ``.onnx`` + ``.onnx.json`` pair) on onnxruntime;
- ``gpt-sovits`` (``gpt_sovits.py``) and ``cosyvoice`` (``cosyvoice.py``): clients for those
  servers when the user runs them (``remote.py`` is the HTTP part).

``text.py`` cuts text into the pieces that stream; ``wav.py`` holds the audio helpers. Nothing
heavy is imported here: onnxruntime and numpy load with a Piper voice.
"""

from zishu.hookspecs import hookimpl

from .cosyvoice import CosyVoiceEngine
from .espeak import EspeakEngine
from .gpt_sovits import GptSovitsEngine
from .piper import PiperEngine


@hookimpl
def register_engines(register):
    # espeak-ng first: with no model, the host picks the first tts engine that needs none.
    for engine in (EspeakEngine(), PiperEngine(), GptSovitsEngine(), CosyVoiceEngine()):
        register(engine)
