"""The Storyboard panel in headless Chromium against a real ``zishu serve`` with tiny models: a project
made in the form (field errors from 400s shown on their fields, background music uploaded), shots
added by hand, dragged and moved with the keyboard, deleted and brought back with Undo, every shot
rendered by its job (espeak-ng narration; the durations follow it) with its status live on its card,
one narration regenerated alone, one full export whose progress reaches done and whose MP4 plays in
the preview's <video>, Open folder, then an export cancelled half way. A second test has the tiny
GGUF write the shots under the JSON grammar, and Undo them.

Render all draws every shot's picture through the studio (``Studio.generate``, a gallery row made by
the shot's job) with a tiny random Stable Diffusion (``tiny_diffusers``), the studio's default as the
only image model installed, at a ``storyboard_picture_side`` of 64 (set with PUT /api/settings):
112×64 for 16:9, the size the tiny model draws at in seconds on a CPU. Export scales it to 720p.

Screenshots go to ``ZISHU_SCREENSHOTS`` (light and dark) when it is set, to look at them."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import AppProcess, app_origin, install_resource, watched_page
from zishu.storyboard.shots import picture_size

pytestmark = pytest.mark.browser

WAIT = 60_000  # ms
RENDER_WAIT = 300_000  # ms: three pictures, three narrations and an encode on a CPU shared with other tests
CONTEXT = 16_384  # room for the longest answer the shots' grammar allows (writer.answer_tokens), plus the chat
SIDE = 64  # the shots' short side (storyboard_picture_side): the tiny SD model draws it in seconds
TINY_SD = {"format": "diffusers", "role": "image", "base_model": "runwayml/stable-diffusion-v1-5"}
SHOTS_FOLDER = os.environ.get("ZISHU_SCREENSHOTS")
LLM_OFFERED = "qwen/qwen2-5-0-5b-instruct-gguf"  # the shipped catalog's one language model
STORY = "The lighthouse keeper found a message in a bottle. She sailed to the island it named. A friend waited there."
SHOTS = [("a lighthouse at dusk", "The keeper found a bottle."),
         ("a small boat at sea", "She sailed away."),
         ("two friends on a beach", "A friend waited.")]


@pytest.fixture(scope="module")
def writer(tmp_path_factory):
    """A random-weight GGUF: left alone it writes noise; under the grammar, shots."""
    from tiny_gguf import write_tiny_gguf

    folder = tmp_path_factory.mktemp("storyboard-models")
    return write_tiny_gguf(folder / "writer.gguf", dim=128, layers=2, heads=4, ffn=256, context=CONTEXT)


@pytest.fixture(scope="module")
def painter(tmp_path_factory):
    """A random-weight Stable Diffusion in diffusers' layout: it draws noise, but draws it for real."""
    from tiny_diffusers import write_tiny_sd

    return write_tiny_sd(tmp_path_factory.mktemp("storyboard-sd") / "sd")


@pytest.fixture
def app(tmp_path, writer, painter):
    """``zishu serve`` over a home with the tiny GGUF and the tiny SD model (the studio's default),
    shots drawn ``SIDE`` pixels high, and an ``xdg-open`` first on PATH that writes down what the
    desktop was asked to open."""
    home = tmp_path / "home"
    install_resource(home, "alice/writer", {"format": "gguf", "role": "llm", "context_length": CONTEXT},
                     files={"m.gguf": writer})
    install_resource(home, "alice/tiny-sd", TINY_SD, files={part.name: part for part in painter.iterdir()})
    desktop = tmp_path / "desktop"
    desktop.mkdir()
    opener = desktop / "xdg-open"
    opener.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{tmp_path / "opened.part"}"\n'
                      f'mv "{tmp_path / "opened.part"}" "{tmp_path / "opened.txt"}"\n', encoding="utf-8")
    opener.chmod(opener.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "ZISHU_HOME": str(home), "PATH": f"{desktop}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        chosen = app.api("PUT", "/api/settings", json={"storyboard_picture_side": SIDE})
        assert chosen.status_code == 200 and chosen.json()["storyboard_picture_side"] == SIDE, chosen.text
        app.opened = tmp_path / "opened.txt"
        app.home = home
        yield app


def tone(path: Path, seconds: float = 3.0) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}",
                    str(path)], check=True)
    return path


def field_error(page, testid: str):
    """The error shown on the field that holds the element ``testid``."""
    return page.get_by_test_id(testid).locator("xpath=ancestor-or-self::*[contains(@class,'field')][1]") \
        .get_by_test_id("field-error")


def prompts(page) -> list[str]:
    return page.get_by_test_id("shot-prompt").evaluate_all("nodes => nodes.map(n => n.value)")


def screenshot(page, name: str, toasts: bool = False) -> None:
    if SHOTS_FOLDER:
        if not toasts:
            page.evaluate("() => document.querySelectorAll('.toast').forEach(t => t.remove())")
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=f"{SHOTS_FOLDER}/storyboard-{name}.png", full_page=True)


def test_a_storyboard_is_made_rendered_and_exported_in_the_panel(browser, app, tmp_path):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        page.set_viewport_size({"width": 1280, "height": 1600})  # every card in view: a drag needs no scrolling
        page.get_by_test_id("nav-storyboard").click()
        form = page.get_by_test_id("project-form")
        expect(form).to_be_visible()  # no storyboard yet: the form for the first one

        # A 400 naming a field is shown on that field.
        page.get_by_test_id("project-save").click()
        expect(field_error(page, "field-story")).to_contain_text("story: must not be empty")
        expect(page.get_by_test_id("field-story")).to_have_attribute("aria-invalid", "true")
        fake = tmp_path / "song.mp3"
        fake.write_bytes(b"\x00not an mp3" * 100)
        page.get_by_test_id("field-music").set_input_files(str(fake))
        expect(field_error(page, "field-music")).to_contain_text("music: song.mp3 is not an audio file")
        screenshot(page, "form-errors-light")
        page.get_by_test_id("field-music").set_input_files(str(tone(tmp_path / "waves.wav")))
        expect(page.get_by_test_id("music-name")).to_have_text("waves.wav · 3.0 s")
        expect(field_error(page, "field-music")).to_have_count(0)

        page.get_by_test_id("field-title").fill("The bottle")
        page.get_by_test_id("field-story").fill(STORY)
        page.get_by_test_id("field-aspect").select_option("16:9")
        page.get_by_test_id("project-save").click()
        expect(page.get_by_test_id("project-title")).to_have_text("The bottle")
        expect(page.get_by_test_id("project-facts")).to_contain_text("music")
        pid = app.api("GET", "/api/storyboards").json()["storyboards"][0]["id"]
        assert page.url.endswith(f"/storyboard?project={pid}")

        # Shots by hand; a refused one names its field.
        page.get_by_test_id("add-shot-box").locator("summary").click()
        page.get_by_test_id("add-narration").fill("No picture asked for.")
        page.get_by_test_id("add-shot").click()
        expect(field_error(page, "add-prompt")).to_contain_text("prompt: must not be empty")
        for prompt, narration in SHOTS:
            page.get_by_test_id("add-prompt").fill(prompt)
            page.get_by_test_id("add-narration").fill(narration)
            page.get_by_test_id("add-shot").click()
            expect(page.get_by_test_id("shot-prompt").last).to_have_value(prompt)
        expect(page.get_by_test_id("shot")).to_have_count(3)
        assert prompts(page) == [p for p, _ in SHOTS]

        # Drag the third card above the first; then move the first down with the keyboard's button.
        cards = page.get_by_test_id("shot")
        cards.nth(2).get_by_test_id("shot-number").drag_to(cards.nth(0).get_by_test_id("shot-thumb"),
                                                            target_position={"x": 5, "y": 2})
        expect(page.get_by_test_id("shot-prompt").first).to_have_value(SHOTS[2][0])
        expect(page.get_by_test_id("undo-edit")).to_have_text("Undo: reorder the shots")  # the server has it
        order = [s["prompt"] for s in app.api("GET", f"/api/storyboards/{pid}").json()["shots"]]
        assert order == [SHOTS[2][0], SHOTS[0][0], SHOTS[1][0]]
        cards.nth(0).get_by_test_id("shot-down").click()
        expect(page.get_by_test_id("shot-prompt").nth(1)).to_have_value(SHOTS[2][0])
        expect(cards.nth(1).get_by_test_id("shot-down")).to_be_focused()  # focus follows the moved card
        assert prompts(page) == [SHOTS[0][0], SHOTS[2][0], SHOTS[1][0]]

        # Delete with Undo; an edited narration is kept.
        cards.nth(2).get_by_test_id("shot-delete").click()
        expect(page.get_by_test_id("shot")).to_have_count(2)
        page.get_by_test_id("undo").click()
        expect(page.get_by_test_id("shot")).to_have_count(3)
        assert prompts(page) == [SHOTS[0][0], SHOTS[2][0], SHOTS[1][0]]
        narration = page.get_by_test_id("shot-narration").first
        narration.fill("The keeper found a bottle on the rocks.")
        narration.blur()
        expect(page.get_by_test_id("undo-edit")).to_have_text("Undo: edit a shot")
        shots = app.api("GET", f"/api/storyboards/{pid}").json()["shots"]
        assert shots[0]["narration"] == "The keeper found a bottle on the rocks."

        # Render all: every card goes to Ready, live, with the picture the studio drew for it by the
        # shot's job, and its duration follows the narration.
        assert app.api("GET", "/api/studio/gallery").json()["total"] == 0
        page.get_by_test_id("render-all").click()
        expect(page.get_by_test_id("render-all")).to_have_text("Rendering…")
        for n in range(3):
            expect(cards.nth(n).get_by_test_id("shot-status")).to_have_text("Ready", timeout=RENDER_WAIT)
        width, height = picture_size("16:9", SIDE)
        page.wait_for_function("([w, h]) => [...document.querySelectorAll('[data-testid=shot-image]')]"
                               ".every(i => !i.hidden && i.complete && i.naturalWidth === w && i.naturalHeight === h)",
                               arg=[width, height], timeout=WAIT)
        expect(page.get_by_test_id("shots-summary")).to_contain_text("3 of 3 ready")
        rendered = app.api("GET", f"/api/storyboards/{pid}").json()["shots"]
        assert all(s["audio"] == f"shot-{s['id']}.wav" and s["status"] == "SUCCESS" for s in rendered)
        drawn = {row["job_id"]: row for row in app.api("GET", "/api/studio/gallery").json()["images"]}
        assert len(drawn) == 3
        for n, shot in enumerate(rendered):
            assert shot["image"] == f"shot-{shot['id']}.png"
            row = drawn[shot["job_id"]]  # the studio drew it in the shot's own job, and the gallery keeps it
            assert shot["prompt"] in row["prompt"] and row["model"].startswith("alice/tiny-sd")
            assert (row["width"], row["height"], row["seed"]) == (width, height, project_seed(app, pid))
            card = app.api("GET", cards.nth(n).get_by_test_id("shot-image").get_attribute("src"))
            assert card.status_code == 200 and card.content == app.api("GET", row["url"]).content
        screenshot(page, "rendered-light")
        expect(cards.nth(0).get_by_test_id("shot-duration")).to_have_text(f"{rendered[0]['duration']:.1f} s")
        expect(cards.nth(0).get_by_test_id("shot-play")).to_be_visible()
        expect(page.get_by_test_id("slide-image")).to_be_visible()  # the preview before export: the shots
        expect(page.get_by_test_id("slide-caption")).to_have_text(rendered[0]["subtitle"])
        page.get_by_test_id("slide-play").click()  # the shots one after another, each with its narration
        page.wait_for_function("() => { const a = document.querySelector('[data-testid=slide-audio]');"
                               " return a.src.includes('/files/shot-') && a.duration > 0; }", timeout=WAIT)
        expect(page.get_by_test_id("slide-position")).to_have_text("Shot 2 of 3", timeout=WAIT)
        expect(page.get_by_test_id("slide-caption")).to_have_text(rendered[1]["subtitle"])
        page.get_by_test_id("slide-play").click()
        expect(page.get_by_test_id("slide-play")).to_have_text("▶ Play shots")

        # Regenerate one shot's narration: a new job for it alone, and it comes back Ready.
        cards.nth(1).get_by_test_id("shot-regenerate").click()
        cards.nth(1).get_by_test_id("regenerate-narration").click()
        again = rendered
        deadline = time.monotonic() + WAIT / 1000
        while again[1]["job_id"] == rendered[1]["job_id"]:  # the click queued a new job for shot 2
            assert time.monotonic() < deadline, "Regenerate queued no job"
            time.sleep(0.1)
            again = app.api("GET", f"/api/storyboards/{pid}").json()["shots"]
        assert app.wait_job(again[1]["job_id"], timeout=RENDER_WAIT / 1000)["status"] == "SUCCESS"
        expect(cards.nth(1).get_by_test_id("shot-status")).to_have_text("Ready", timeout=WAIT)
        assert [again[0]["job_id"], again[2]["job_id"]] == [rendered[0]["job_id"], rendered[2]["job_id"]]
        assert app.api("GET", "/api/studio/gallery").json()["total"] == 3  # the narration alone: no new picture

        # One full export, with every option.
        page.get_by_test_id("export-burn").check()
        page.get_by_test_id("export-crossfade").select_option("1")
        page.get_by_test_id("export").click()  # longer than half the shortest shot: refused on the field
        expect(field_error(page, "export-crossfade")).to_contain_text("crossfade: 1 s at both ends is too long")
        page.get_by_test_id("export-crossfade").select_option("0.5")
        page.get_by_test_id("export").click()
        expect(page.get_by_test_id("export-done")).to_be_visible(timeout=RENDER_WAIT)
        expect(page.get_by_test_id("export-status")).to_have_text("Exported.")
        made = app.api("GET", f"/api/storyboards/{pid}").json()["export"]
        assert made["crossfade"] == 0.5 and made["burn_subtitles"] and made["music"]
        assert (made["width"], made["height"]) == (1280, 720)
        expect(page.get_by_test_id("preview-video")).to_be_visible()
        page.wait_for_function("() => { const v = document.querySelector('[data-testid=preview-video]');"
                               " return v.readyState >= 1 && v.duration > 0; }", timeout=WAIT)
        duration = page.get_by_test_id("preview-video").evaluate("v => v.duration")
        assert abs(duration - made["duration"]) < 0.2
        href = page.get_by_test_id("download").get_attribute("href")
        got = app.api("GET", href)
        assert got.status_code == 200 and got.headers["Content-Type"] == "video/mp4" and len(got.content) > 1000
        assert page.get_by_test_id("download-srt").get_attribute("href").endswith(".srt")

        page.get_by_test_id("open-folder").click()
        expect(page.get_by_test_id("toast").last).to_contain_text("Opened")
        deadline = time.monotonic() + WAIT / 1000
        while not app.opened.exists():  # xdg-open runs beside the app, as on a desktop
            assert time.monotonic() < deadline, "xdg-open was not run"
            time.sleep(0.05)
        assert app.opened.read_text().split() == [str(Path(made["path"]).parent)]

        screenshot(page, "light")
        page.get_by_test_id("theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        screenshot(page, "dark")
        page.get_by_test_id("project-edit").click()
        expect(page.get_by_test_id("field-title")).to_have_value("The bottle")
        screenshot(page, "form-dark")
        page.get_by_test_id("project-form-close").click()

        # A long export is cancelled half way: the old MP4 stays, nothing half written looks finished.
        for shot in shots:
            assert app.api("PATCH", f"/api/storyboards/{pid}/shots/{shot['id']}",
                           json={"duration": 60}).status_code == 200
        page.reload()
        page.get_by_test_id("export-burn").uncheck()
        page.get_by_test_id("export").click()
        expect(page.get_by_test_id("export-percent")).to_have_text(lambda_percent(), timeout=WAIT)
        page.get_by_test_id("export-cancel").click()
        expect(page.get_by_test_id("export-message")).to_have_text("Export cancelled: no video was written.",
                                                                   timeout=WAIT)
        expect(page.get_by_test_id("export-done")).to_be_visible()
        folder = Path(made["path"]).parent
        assert sorted(p.name for p in folder.iterdir()) == sorted([Path(made["path"]).name,
                                                                   Path(made["subtitles"]).name])


def project_seed(app, pid: int) -> int:
    return app.api("GET", f"/api/storyboards/{pid}").json()["seed"]


def lambda_percent():
    import re

    return re.compile(r"^[1-9]\d? %$")  # some progress, not yet done


def test_the_language_model_writes_the_shots_and_undo_takes_them_back(browser, app):
    from playwright.sync_api import expect

    made = app.api("POST", "/api/storyboards", json={"story": STORY, "title": "Written"})
    assert made.status_code == 201, made.text
    with watched_page(browser, app.login_url) as page:
        page.goto(f"{app_origin(page)}/storyboard?project={made.json()['id']}")
        expect(page.get_by_test_id("shots-empty")).to_be_visible()
        page.get_by_test_id("write-count").fill("30")
        page.get_by_test_id("write-shots").click()
        expect(field_error(page, "write-count")).to_contain_text("shots: must be a whole number from 1 to 24")
        page.get_by_test_id("write-count").fill("2")
        page.get_by_test_id("write-shots").click()
        expect(page.get_by_test_id("shot")).to_have_count(2, timeout=RENDER_WAIT)
        for n in range(2):
            assert page.get_by_test_id("shot-prompt").nth(n).input_value().strip()
        expect(page.get_by_test_id("shot-status").first).to_have_text("Not rendered")
        screenshot(page, "written-light", toasts=True)  # with its Undo toast
        page.get_by_test_id("undo").click()
        expect(page.get_by_test_id("shot")).to_have_count(0)
        expect(page.get_by_test_id("shots-empty")).to_be_visible()


def test_with_no_language_model_write_shots_offers_the_catalogs_one_to_install(browser, tmp_path):
    from playwright.sync_api import expect

    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}  # a new user's: nothing installed
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        made = app.api("POST", "/api/storyboards", json={"story": STORY, "title": "Unwritten"}).json()
        refused = app.api("POST", f"/api/storyboards/{made['id']}/write", json={"shots": 3})
        assert refused.status_code == 404
        error = refused.json()["error"]
        assert error["code"] == "MODEL_NOT_AVAILABLE" and error["install"] == LLM_OFFERED
        assert error["message"].startswith("model: no language model is installed to write the storyboard; install "
                                           f"{LLM_OFFERED} (zishu install {LLM_OFFERED}), or write the shots by hand")
        with watched_page(browser, app.login_url) as page:
            page.goto(f"{app_origin(page)}/storyboard?project={made['id']}")
            page.get_by_test_id("write-shots").click()
            toast = page.get_by_test_id("toast").filter(has_text="no language model is installed")
            expect(toast.get_by_test_id("toast-install")).to_have_text(f"Install {LLM_OFFERED}", timeout=WAIT)
            toast.get_by_test_id("toast-install").click()  # the Install dialog first, as every Install button
            dialog = page.get_by_test_id("install-dialog")
            expect(dialog).to_be_visible()
            expect(dialog).to_contain_text(LLM_OFFERED)
            dialog.get_by_test_id("install-cancel").click()
            expect(toast.get_by_test_id("toast-install")).to_be_enabled()

            # a shot written by hand, rendered with no image model: the card and Jobs offer the model
            page.get_by_test_id("add-shot-box").locator("summary").click()
            page.get_by_test_id("add-prompt").fill("a fox holding a lantern")
            page.get_by_test_id("add-narration").fill("A fox found a lantern.")
            page.get_by_test_id("add-shot").click()
            page.get_by_test_id("render-all").click()
            card = page.get_by_test_id("shot")
            expect(card.get_by_test_id("shot-error")).to_contain_text("no image model is installed", timeout=WAIT)
            expect(card.get_by_test_id("shot-install-button")).to_have_text("Install stabilityai/sd-turbo")
            page.goto(f"{app_origin(page)}/jobs")
            failed = page.get_by_test_id("job").filter(has_text="no image model is installed")
            expect(failed.get_by_test_id("job-install-button")).to_have_text("Install stabilityai/sd-turbo")
            # its bar in the danger colour (app.css styles progress[data-status="FAILED"]), not the accent
            expect(failed.get_by_test_id("job-progress")).to_have_attribute("data-status", "FAILED")
    assert not (tmp_path / "home" / "resources" / "qwen").exists()  # cancelled: nothing installed
