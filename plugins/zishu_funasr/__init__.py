"""The built-in FunASR engines: speech recognition (``funasr``) and voice activity (``fsmn-vad``).

A model is a folder in FunASR's own layout (config.yaml, model.pt, tokenizer files, am.mvn,
configuration.json), installed from the catalog (format "funasr") or given as a local path; its
config.yaml's ``model:`` says which model it is. Loaded with ``funasr.AutoModel``, offline: nothing
is looked up on a model hub and no update check runs.

    engines     the two engines: what they load and what their handles are
    folder      checking a model folder and loading it with AutoModel
    audio       PCM in, cutting long audio into pieces, joining text
    tags        SenseVoice's rich tags (language, emotion, audio event) into a Transcript
    sensevoice  SenseVoiceSmall: whole utterances of any length, with tags
    paraformer  streaming Paraformer: live partial transcripts
    vad         FSMN voice activity detection

funasr, torch and numpy are imported only when a model loads, so the host starts fast and lists
these engines (with what to install) even where the libraries are missing.
"""

from zishu.hookspecs import hookimpl

from .engines import FsmnVadEngine, FunasrEngine


@hookimpl
def register_engines(register):
    register(FunasrEngine())
    register(FsmnVadEngine())
