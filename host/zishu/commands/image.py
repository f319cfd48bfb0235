"""``zishu image PROMPT``: a picture from the terminal, through the studio (the same checks, cache
and gallery as the app), with a progress bar. Prints each picture's path; ``--out`` also copies it."""

from __future__ import annotations

import shutil
import signal
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .run import lora_option

err = Console(stderr=True)


@click.command("image")
@click.option("--model", "-m", help="A catalog id or a model folder or file (default: the Settings' studio model, "
                                    "else the first image model installed).")
@click.option("--negative", default="", help="What the picture should not show.")
@click.option("--style", help="A style preset: its template, negative, LoRAs and defaults (for the options not given).")
@click.option("--character", help="An installed character (owner/name): its appearance, LoRA, style and seed.")
@click.option("--lora", "loras", multiple=True, help="A LoRA: catalog id or path, optionally :WEIGHT (repeatable).")
@click.option("--width", type=int, help="Default: the style's, else 512.")
@click.option("--height", type=int, help="Default: the style's, else 512.")
@click.option("--steps", type=int, help="Default: the style's, else 20.")
@click.option("--guidance", type=float, help="Default: the style's, else 7.")
@click.option("--seed", type=int, default=None, help="Fix the seed: the same request is then answered from the cache.")
@click.option("--sampler", "scheduler", help="A sampler by name (Euler a, DPM++ 2M Karras, …).")
@click.option("--batch", default=1, show_default=True, type=int)
@click.option("--device", help="cpu, cuda, cuda:1 … (default: a GPU when the engine can use one).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Also copy the picture here; a batch writes NAME-2.png, NAME-3.png … beside it.")
@click.argument("prompt", default="")
def image_command(model, negative, style, character, loras, width, height, steps, guidance, seed, scheduler, batch,
                  device, out, prompt):
    """Draw PROMPT with the studio; the pictures go to the gallery. Ctrl-C stops between steps.
    PROMPT may be left out with --character (its appearance is then the prompt)."""
    from zishu.runtime import Runtime

    data = {"prompt": prompt or None, "negative_prompt": negative or None, "style": style, "character": character,
            "loras": [{"id": name, "weight": weight} for name, weight in map(lora_option, loras)],
            "width": width, "height": height, "steps": steps, "guidance": guidance, "seed": seed,
            "scheduler": scheduler, "batch": batch, "model": model}
    runtime = Runtime()
    try:
        prepared = runtime.studio.prepare({k: v for k, v in data.items() if v is not None})
        stop = threading.Event()
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            with Progress(TextColumn("drawing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("steps", total=prepared.request.steps)
                result = runtime.studio.generate(
                    prepared, progress=lambda step, total: bar.update(task, completed=step, total=total),
                    cancelled=stop.is_set, device=device)
        finally:
            signal.signal(signal.SIGINT, previous)
        for index, row in enumerate(result.images, 1):
            path = runtime.studio.gallery.path(row)
            if out is not None:
                target = out if index == 1 else out.with_name(f"{out.stem}-{index}{out.suffix}")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                path = target
            click.echo(path)
        where = "from the cache" if result.cached else f"seed {result.seed}"
        drawn = prepared.request
        err.print(f"[dim]{len(result.images)} picture(s) {drawn.width}×{drawn.height}, {where}; in the gallery as "
                  f"{', '.join(str(row.id) for row in result.images)}[/]")
    finally:
        runtime.close()
