"""The ``funasr`` (asr) and ``fsmn-vad`` (vad) engines: what each loads and which handle it returns.

``funasr`` loads by config.yaml's ``model:``

    SenseVoiceSmall      -> sensevoice.SenseVoice (transcribe any length, with tags; stream buffers)
    ParaformerStreaming  -> paraformer.ParaformerStreaming (live partials from stream; transcribe)

A SenseVoice folder may carry an FSMN VAD model in a ``vad/`` subfolder: long audio is then cut
into speech segments by it (else into windows of at most 30 s). To pair it with a VAD model kept
elsewhere, hand that model's handle to the recognizer: ``asr.use_vad(use(runtime, "vad", vad).handle)``.
"""

from __future__ import annotations

import importlib.util

from zishu.engines import Engine, EngineInfo, ModelRef
from zishu.errors import EngineError

_LIBRARIES = {"funasr": "funasr", "torch": "torch", "numpy": "numpy",
              "kaldi_native_fbank": "kaldi-native-fbank", "sentencepiece": "sentencepiece"}


def missing_libraries() -> str | None:
    missing = [name for module, name in _LIBRARIES.items() if importlib.util.find_spec(module) is None]
    return f"needs {', '.join(missing)}: pip install 'zishu[asr]'" if missing else None


class FunasrEngine(Engine):
    info = EngineInfo(kind="asr", name="funasr", formats=("funasr",),
                      capabilities=frozenset({"streaming", "emotions", "languages"}),
                      description="FunASR speech recognition: SenseVoiceSmall (language, emotion and audio-event "
                                  "tags) and streaming Paraformer (live partial transcripts).")

    def unavailable(self) -> str | None:
        return missing_libraries()

    def load(self, model: ModelRef, device: str = "cpu"):
        from .folder import ModelFolder

        folder = ModelFolder.of(model)
        if folder.model_class == "SenseVoiceSmall":
            from .sensevoice import SenseVoice

            vad = folder.vad_folder()
            return SenseVoice(folder.load(device), vad=_fsmn_vad(vad, device) if vad else None)
        if folder.model_class == "ParaformerStreaming":
            from .paraformer import ParaformerStreaming

            return ParaformerStreaming(folder.load(device))
        if folder.model_class == "FsmnVADStreaming":
            raise EngineError(f"{model.label} is an FSMN voice activity model: load it as vad (engine fsmn-vad)")
        raise EngineError(f"{folder.config_file}: model {folder.model_class!r} is not one the funasr engine runs "
                          "(it runs SenseVoiceSmall and ParaformerStreaming)")


class FsmnVadEngine(Engine):
    info = EngineInfo(kind="vad", name="fsmn-vad", formats=("funasr",),
                      description="FunASR's FSMN voice activity detection: speech segments in long audio.")

    def unavailable(self) -> str | None:
        return missing_libraries()

    def load(self, model: ModelRef, device: str = "cpu"):
        from .folder import ModelFolder

        return _fsmn_vad(ModelFolder.of(model), device)


def _fsmn_vad(folder, device: str):
    from .vad import FsmnVad

    if folder.model_class != "FsmnVADStreaming":
        raise EngineError(f"{folder.config_file}: model {folder.model_class!r} is not an FSMN voice activity model "
                          "(FsmnVADStreaming)")
    return FsmnVad(folder.load(device))
