"""``zishu run llm|asr|tts|image|embedding``: one call to an engine from the terminal.

``--model`` takes an installed catalog id (``owner/name[@version]``) or a local file or folder;
``--engine`` picks an engine by name (``zishu engines`` lists them). Replies stream to stdout; the
figures (load time, time to first output, rate) go to stderr so stdout stays clean for pipes.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from zishu.errors import UsageError

err = Console(stderr=True)


def lora_option(value: str) -> tuple[str, float]:
    """``ID_OR_PATH[:WEIGHT]`` → (name, weight); the weight defaults to 1."""
    name, sep, weight = value.rpartition(":")
    if not sep or not _is_number(weight):
        return value, 1.0
    return name, float(weight)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


model_option = click.option(
    "--model", "-m", help="An installed catalog id (owner/name[@version]) or a local model file or folder.")
engine_option = click.option(
    "--engine", "-e", help="The engine to use, by name (see zishu engines); default: the first that loads the model.")
device_option = click.option("--device", help="cpu, cuda, cuda:1 … (default: a GPU when the engine can use one).")


def _ready(kind, model, engine, device, adapters=()):
    from zishu.engines import use
    from zishu.runtime import Runtime

    runtime = Runtime()
    started = time.perf_counter()
    with err.status(f"loading {model or 'the default ' + kind + ' engine'} …"):
        ready = use(runtime, kind, model, engine=engine, adapters=list(adapters), device=device)
    what = ready.model.label if ready.model else "no model"
    loaded = time.perf_counter() - started
    err.print(f"[dim]{ready.engine.info.name} · {what} · {ready.device} · loaded in {loaded:.2f} s[/]")
    return ready


@click.group("run")
def run_command():
    """Run an engine once: chat with an LLM, transcribe, speak, draw, embed."""


@run_command.command("llm")
@model_option
@engine_option
@device_option
@click.option("--lora", "loras", multiple=True,
              help="A GGUF LoRA: catalog id or path, optionally :WEIGHT (repeatable).")
@click.option("--system", default=None, help="A system prompt.")
@click.option("--max-tokens", default=512, show_default=True, type=click.IntRange(1))
@click.option("--temperature", default=0.8, show_default=True, type=click.FloatRange(0))
@click.option("--top-p", default=0.95, show_default=True, type=click.FloatRange(0, 1))
@click.option("--top-k", default=40, show_default=True, type=click.IntRange(0))
@click.option("--seed", type=int, default=None, help="Fix the sampling seed for a reproducible reply.")
@click.option("--stop", multiple=True, help="End the reply before this text (repeatable).")
@click.argument("prompt")
def run_llm(model, engine, device, loras, system, max_tokens, temperature, top_p, top_k, seed, stop, prompt):
    """Chat once: PROMPT is the user's message; the reply streams to stdout."""
    from zishu.engines import ChatOptions

    ready = _ready("llm", model, engine, device, [lora_option(v) for v in loras])
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    options = ChatOptions(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed,
                          stop=tuple(stop))
    started, first, pieces = time.perf_counter(), None, 0
    for piece in ready.handle.chat(messages, options):
        if first is None:
            first = time.perf_counter() - started
        pieces += 1
        click.echo(piece, nl=False)
    click.echo()
    total = time.perf_counter() - started
    if first is not None:
        err.print(f"[dim]{pieces} pieces in {total:.2f} s · first after {first * 1000:.0f} ms · "
                  f"{pieces / max(total - first, 1e-9):.1f} pieces/s after the first[/]")


@run_command.command("asr")
@model_option
@engine_option
@device_option
@click.option("--language", default="auto", show_default=True, help="auto, zh, en, yue, ja, ko …")
@click.option("--stream", is_flag=True, help="Feed the audio in 600 ms chunks and print the live partials.")
@click.argument("wav", type=click.Path(dir_okay=False, path_type=Path))
def run_asr(model, engine, device, language, stream, wav):
    """Transcribe a WAV file (any rate and channels; converted to 16 kHz mono)."""
    from zishu.audio import read_pcm
    from zishu.engines import ASR_SAMPLE_RATE

    pcm = read_pcm(wav, ASR_SAMPLE_RATE)
    ready = _ready("asr", model, engine, device)
    started = time.perf_counter()
    if stream:
        step = ASR_SAMPLE_RATE * 2 * 600 // 1000
        chunks = (pcm[i:i + step] for i in range(0, len(pcm), step))
        result = None
        for result in ready.handle.stream(chunks, language):
            if not result.final:
                err.print(f"[dim]… {result.text}[/]")
        if result is None:
            raise UsageError(f"{wav}: no audio")
    else:
        result = ready.handle.transcribe(pcm, language)
    click.echo(result.text)
    tags = " · ".join(f"{k} {v}" for k, v in (("language", result.language), ("emotion", result.emotion),
                                               ("event", result.event)) if v)
    seconds = len(pcm) / 2 / ASR_SAMPLE_RATE
    took = time.perf_counter() - started
    err.print(f"[dim]{tags + ' · ' if tags else ''}{seconds:.1f} s of audio in {took:.2f} s[/]")


@run_command.command("tts")
@model_option
@engine_option
@device_option
@click.option("--voice", help="A voice or speaker of the engine (see its voices).")
@click.option("--emotion", help="An emotion, for engines that speak with one (e.g. happy).")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(0.25, 4))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The WAV file to write.")
@click.argument("text")
def run_tts(model, engine, device, voice, emotion, speed, out, text):
    """Speak TEXT into a WAV file (the offline default voice when no --model)."""
    from zishu.audio import write_wav

    ready = _ready("tts", model, engine, device)
    started = time.perf_counter()
    first: list[float] = []  # seconds to the first chunk, once it came

    def timed(chunks):
        for chunk in chunks:
            if not first:
                first.append(time.perf_counter() - started)
            yield chunk

    rate, seconds = write_wav(out, timed(ready.handle.speak(text, voice=voice, emotion=emotion, speed=speed)))
    total = time.perf_counter() - started
    err.print(f"[dim]wrote {out}: {seconds:.1f} s at {rate} Hz in {total:.2f} s · first audio after "
              f"{first[0] * 1000:.0f} ms · {seconds / total:.1f}× real time[/]")


@run_command.command("image")
@model_option
@engine_option
@device_option
@click.option("--lora", "loras", multiple=True,
              help="An image LoRA: catalog id or path, optionally :WEIGHT (repeatable).")
@click.option("--negative", default="", help="What the image should not show.")
@click.option("--width", default=512, show_default=True, type=click.IntRange(8))
@click.option("--height", default=512, show_default=True, type=click.IntRange(8))
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1))
@click.option("--guidance", default=7.0, show_default=True, type=click.FloatRange(0))
@click.option("--seed", type=int, default=None, help="Fix the seed for a reproducible image.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(1, 8))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The PNG to write; a batch writes NAME-2.png, NAME-3.png … beside it.")
@click.argument("prompt")
def run_image(model, engine, device, loras, negative, width, height, steps, guidance, seed, batch, out, prompt):
    """Draw PROMPT into a PNG. Ctrl-C stops between steps."""
    from zishu.engines import ImageRequest
    from zishu.files import adjacent_tmp_file

    ready = _ready("image", model, engine, device, [lora_option(v) for v in loras])
    request = ImageRequest(prompt=prompt, negative_prompt=negative, width=width, height=height, steps=steps,
                           guidance=guidance, seed=seed, batch=batch)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    started = time.perf_counter()
    try:
        with Progress(TextColumn("drawing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("steps", total=steps)
            images = ready.handle.draw(
                request, progress=lambda step, total: bar.update(task, completed=step, total=total),
                cancelled=stop.is_set)
    finally:
        signal.signal(signal.SIGINT, previous)
    total = time.perf_counter() - started
    for index, image in enumerate(images, 1):
        path = out if index == 1 else out.with_name(f"{out.stem}-{index}{out.suffix}")
        with adjacent_tmp_file(path) as f:
            image.save(f, format="PNG")
        click.echo(path)
    err.print(f"[dim]{len(images)} image(s) {width}×{height}, {steps} steps in {total:.2f} s "
              f"({total / steps * 1000:.0f} ms a step)[/]")


@run_command.command("embedding")
@model_option
@engine_option
@device_option
@click.argument("texts", nargs=-1, required=True)
def run_embedding(model, engine, device, texts):
    """Embed each TEXT; prints one JSON vector per line."""
    ready = _ready("embedding", model, engine, device)
    for vector in ready.handle.embed(list(texts)):
        click.echo(json.dumps([round(v, 6) for v in vector]))
