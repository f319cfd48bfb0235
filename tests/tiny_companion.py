"""A home where the companion can run, made of tiny models the tests build: Mei (acme/mei), whose
LLM always answers "[joy]Hugs, cat.", a random "talker" LLM that rambles, a tiny SenseVoice to hear
and a tiny FSMN VAD. Used by the companion tests and bench/voice_loop.py."""

from __future__ import annotations

from pathlib import Path

from conftest import install_resource
from tiny_funasr import write_tiny_fsmn_vad, write_tiny_sensevoice
from tiny_gguf import write_tiny_gguf

REPLY = "[joy]Hugs, cat."  # the scripted LLM's answer: an emotion tag, then two sentences
MEI = {"persona": "You are {{char}}.", "greetings": ["Hello! I'm Mei."], "llm": {"model": "acme/scripted"},
       "emotions": {"joy": {"expression": "smile", "motion": "wave"}}}


def write_companion_models(root: Path) -> dict[str, Path]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return {"scripted": write_tiny_gguf(root / "scripted.gguf", script=REPLY, context=2048),
            "talker": write_tiny_gguf(root / "talker.gguf", dim=256, layers=4, heads=4, ffn=512, context=2048),
            "ear": write_tiny_sensevoice(root / "ear"), "vad": write_tiny_fsmn_vad(root / "vad")}


def install_companion(home: Path, models: dict[str, Path]) -> None:
    """Install the models (acme/scripted, acme/talker, acme/ear, acme/vad) and Mei into ``home``."""
    for rid, which in (("acme/scripted", "scripted"), ("acme/talker", "talker")):
        install_resource(home, rid, {"format": "gguf", "role": "llm"}, files={"m.gguf": models[which]})
    for rid, which, role in (("acme/ear", "ear", "asr"), ("acme/vad", "vad", "vad")):
        install_resource(home, rid, {"format": "funasr", "role": role},
                         files={p.name: p for p in models[which].iterdir()})
    install_resource(home, "acme/mei", MEI, kind="character", name="Mei")
