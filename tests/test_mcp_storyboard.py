"""The storyboard's MCP tools (create_storyboard, export_video) through the SDK's own client on the
real server object (in-process transport): the project and its shot jobs, espeak-ng narrating them
on the real queue, the MP4 encoded by ffmpeg with progress notifications, and each refusal named."""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
from PIL import Image

STORY = "小猫在雨中迷路了。它找到一只友好的狗。"
SHOTS = [{"prompt": "a lost kitten in the rain", "narration": "小猫在雨中迷路了。"},
         {"prompt": "a friendly dog", "narration": "它找到一只友好的狗。"}]


def _text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def _wait(runtime, job_id: int, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (job := runtime.jobs.get(job_id)).status not in ("SUCCESS", "FAILED", "CANCELLED"):
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}"
        time.sleep(0.05)
    return job.status


@pytest.mark.parametrize("local_files", [True, False])
def test_refusals_name_the_field(runtime, local_files):
    from mcp import Client

    from zishu.web.mcp_tools import build_server

    server = build_server(runtime, None, local_files=local_files)
    cases = [({"story": ""}, "story: must not be empty"),
             ({"story": STORY, "aspect": "4:3"}, "aspect: must be one of '16:9', '9:16', '1:1', got '4:3'"),
             ({"story": STORY, "colour": "red"}, "colour: unknown field"),
             ({"story": STORY, "shots": [{"prompt": "a cat"}]}, "shots.0.narration: field required"),
             ({"story": STORY, "character": "acme/nobody"}, "character: acme/nobody is not installed")]
    if not local_files:
        cases.append(({"story": STORY, "music": "/etc/passwd"}, "music: files on this computer are read over stdio"))

    async def main():
        async with Client(server) as client:
            for arguments, message in cases:
                refused = await client.call_tool("create_storyboard", arguments)
                assert refused.is_error and message in _text(refused), (arguments, _text(refused))
            for arguments, message in (({"storyboard": 999}, "no storyboard 999"),
                                       ({"storyboard": 1, "burn_subtitles": "yes"}, "burn_subtitles: "),
                                       ({"storyboard": 1, "crossfade": 2.5}, "crossfade: must be 0 to 2 seconds"),
                                       ({}, "storyboard: field required")):
                refused = await client.call_tool("export_video", arguments)
                assert refused.is_error and message in _text(refused), (arguments, _text(refused))

    anyio.run(main)
    assert runtime.storyboards.projects() == []  # a refused request leaves no half-made project


def test_create_storyboard_queues_its_shots_and_export_video_follows_the_encode(runtime):
    from mcp import Client

    from zishu.web.mcp_tools import build_server

    server = build_server(runtime, None)
    heard: list[tuple] = []

    async def progress(done, total, message):
        heard.append((done, total, message))

    async def create():
        async with Client(server) as client:
            made = await client.call_tool("create_storyboard", {"story": STORY, "shots": SHOTS, "wait": False})
            assert not made.is_error, _text(made)
            return json.loads(_text(made))

    made = anyio.run(create)
    project = made["storyboard"]
    assert [s["prompt"] for s in project["shots"]] == [s["prompt"] for s in SHOTS] and len(made["jobs"]) == 2

    # pictures as the studio would leave them; the queued shot jobs then narrate each shot (espeak-ng)
    boards = runtime.storyboards
    for n, shot in enumerate(boards.shots(project["id"])):
        Image.new("RGB", (912, 512), (200, 80 * n, 60)).save(boards.folder(project["id"]) / f"shot-{shot.id}.png")
        boards.set_made(shot.id, image=f"shot-{shot.id}.png")
    runtime.jobs.start_consumer(1)
    try:
        assert [_wait(runtime, j) for j in made["jobs"]] == ["SUCCESS", "SUCCESS"]

        async def export():
            async with Client(server) as client:
                too_long = await client.call_tool("export_video", {"storyboard": project["id"], "crossfade": 2.5})
                assert too_long.is_error and "crossfade: must be 0 to 2 seconds" in _text(too_long), _text(too_long)
                return await client.call_tool("export_video", {"storyboard": project["id"], "burn_subtitles": True,
                                                               "crossfade": 0.25}, progress_callback=progress)

        exported = anyio.run(export)

        # a storyboard whose shots have no pictures: the export job fails, and the tool names the shot
        async def export_early():
            async with Client(server) as client:
                other = json.loads(_text(await client.call_tool("create_storyboard", {"story": STORY, "wait": False})))
                return await client.call_tool("export_video", {"storyboard": other["storyboard"]["id"]})

        early = anyio.run(export_early)
        assert early.is_error and "shots: the storyboard has no shots to export" in _text(early), _text(early)
    finally:
        runtime.jobs.stop_consumer()
    assert not exported.is_error, _text(exported)
    video = json.loads(_text(exported))["video"]
    assert Path(video["path"]).is_file() and Path(video["path"]).suffix == ".mp4"
    seconds = [done for done, total, _ in heard if total]
    assert seconds and seconds == sorted(seconds) and any("encoding" in (m or "") for *_, m in heard), heard
