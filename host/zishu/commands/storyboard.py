"""``zishu storyboard new|shots|render|export``: a story to an MP4 from the terminal.

``new`` makes a project (the story as text, or ``@file``) and, with ``--shots N``, has the local
LLM write N shots; ``shots`` lists them (``--json`` for scripts); ``render`` makes what each shot
lacks (picture, narration) with a progress bar, skipping finished shots, so running it again after
a crash carries on; ``export`` encodes the MP4 with ffmpeg and shows its progress. Progress and
notes go to stderr; stdout carries the result (the project id, the shots, the MP4's path).
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from zishu.errors import UsageError

err = Console(stderr=True)


def _runtime():
    from zishu.runtime import Runtime

    return Runtime()


@click.group("storyboard")
def storyboard_command() -> None:
    """Storyboards: a story becomes illustrated, narrated shots and an MP4."""


@storyboard_command.command("new")
@click.argument("story")
@click.option("--title", help="The project's title (default: the story's first line).")
@click.option("--aspect", type=click.Choice(["16:9", "9:16", "1:1"]), default="16:9", show_default=True)
@click.option("--resolution", type=click.Choice(["720p", "1080p"]), default="720p", show_default=True)
@click.option("--style", help="A studio style for every picture.")
@click.option("--character", help="The character who appears (an installed id): its look, seed and voice.")
@click.option("--voice-engine", help="The narrator's TTS engine (default: the character's, else espeak-ng).")
@click.option("--voice", help="The narrator's voice (an installed voice id, for --voice-engine).")
@click.option("--music", type=click.Path(dir_okay=False), help="Background music, ducked under the narration.")
@click.option("--shots", "count", type=int, help="Have the local LLM write this many shots (1-24).")
@click.option("--model", "-m", help="The LLM that writes the shots (default: the character's, else the first).")
def new_command(story, title, aspect, resolution, style, character, voice_engine, voice, music, count, model):
    """Make a project from STORY (text, or @FILE to read it from a file)."""
    if story.startswith("@"):
        try:
            story = Path(story[1:]).read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"story: cannot read {story[1:]} ({e.strerror})") from None
    rt = _runtime()
    fields = {"story": story, "title": title, "aspect": aspect, "resolution": resolution, "style": style,
              "character": character, "music": music,
              "voice": {"engine": voice_engine, "voice": voice} if voice_engine else None}
    project = rt.storyboards.create({k: v for k, v in fields.items() if v is not None})
    if count is not None:
        from zishu.storyboard.writer import write_storyboard

        try:
            with err.status(f"the language model is writing {count} shots …"):
                write_storyboard(rt, rt.storyboards, project.id, count, model=model)
        except Exception:
            rt.storyboards.delete(project.id)
            raise
    err.print(f"[dim]storyboard {project.id}: {project.title} ({project.language}, {aspect}, {resolution})[/]")
    click.echo(project.id)


@storyboard_command.command("shots")
@click.argument("project", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the project and its shots as JSON.")
def shots_command(project, as_json):
    """List PROJECT's shots."""
    from zishu.storyboard.projects import project_dict

    rt = _runtime()
    found = project_dict(rt.storyboards.get(project), rt.storyboards.shots(project))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{found['title']} · {found['duration']:.1f} s")
    for column in ("#", "id", "status", "s", "prompt", "narration"):
        table.add_column(column)
    for shot in found["shots"]:
        table.add_row(str(shot["position"] + 1), str(shot["id"]), shot["status"], f"{shot['duration']:.1f}",
                      shot["prompt"][:50], shot["narration"][:40])
    Console().print(table)


@storyboard_command.command("render")
@click.argument("project", type=int)
@click.option("--shot", "shot_ids", type=int, multiple=True, help="Only this shot (repeat for several).")
@click.option("--redo", type=click.Choice(["image", "narration", "clip"]), multiple=True,
              help="Make this again even where it is made.")
def render_command(project, shot_ids, redo):
    """Make each shot's picture and narration, and its image-to-video clip where a GPU and a video
    model allow (only what is missing, unless --redo)."""
    from zishu.storyboard.clips import video_choice
    from zishu.storyboard.shots import make_shot

    rt = _runtime()
    shots = rt.storyboards.shots(project)
    chosen = [s for s in shots if (s.id in shot_ids if shot_ids else (s.status != "SUCCESS" or redo))]
    unknown = set(shot_ids) - {s.id for s in shots}
    if unknown:
        raise UsageError(f"--shot: storyboard {project} has no shot {sorted(unknown)[0]}")
    studio = getattr(rt, "studio", None)
    video = video_choice(rt)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("shots", total=len(chosen))
        for shot in chosen:
            bar.update(task, description=f"shot {shot.position + 1}")
            make_shot(rt.storyboards, shot.id, host=rt, studio=studio, redo=tuple(redo), video=video,
                      progress=lambda done, total, message: bar.update(task, description=message))
            bar.advance(task)
    click.echo(f"{len(chosen)} shot(s) made")


@storyboard_command.command("export")
@click.argument("project", type=int)
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Where to write the MP4 (default: in the project).")
@click.option("--burn-subtitles", is_flag=True, help="Burn the subtitles into the picture (the SRT is written anyway).")
@click.option("--no-music", is_flag=True, help="Leave the background music out.")
def export_command(project, out, burn_subtitles, no_music):
    """Encode PROJECT as an MP4 (H.264 + AAC) with ffmpeg; prints its path."""
    from zishu.storyboard.render import export_project

    rt = _runtime()
    with Progress(TextColumn("encoding"), BarColumn(), TextColumn("{task.completed:.1f} s"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("export", total=None)
        made = export_project(rt.storyboards, project, burn_subtitles=burn_subtitles, music=not no_music,
                              out=Path(out) if out else None,
                              progress=lambda done, total: bar.update(task, completed=done, total=total))
    err.print(f"[dim]{made['width']}×{made['height']}, {made['duration']:.2f} s; subtitles: {made['subtitles']}[/]")
    click.echo(made["path"])
