"""The Studio panel in headless Chromium against a real ``zishu serve`` drawing with the real
diffusers engine on a tiny random SD pipeline (``tiny_diffusers``): a refused field shown beside
the field, Generate with live progress and latent previews, the picture in the gallery, its details
(parameters copied to the clipboard, Reuse filling the form), Delete with Undo, Cancel and Retry; a style's missing LoRA
offered for install, a mask painted over a gallery picture and a ControlNet guide sent with the
request, and a picture safe mode blocked shown blurred with its reason. Screenshots (light and dark) go to
``ZISHU_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import AppProcess, app_origin, install_resource, watched_page
from tiny_classifier import write_classifier
from tiny_diffusers import write_tiny_sd
from tiny_postprocess import write_tiny_segmenter, write_tiny_upscaler

pytestmark = pytest.mark.browser

WAIT = 240_000  # ms: the machine may be busy; nothing here is timed
TINY_SD = {"format": "diffusers", "role": "image", "base_model": "runwayml/stable-diffusion-v1-5"}

# Every value the page's progress bars and preview pictures take, as the page shows them.
RECORD = """
window.__seen = {progress: [], previews: []};
new MutationObserver((changes) => {
  for (const change of changes) {
    const node = change.target;
    if (!node.dataset) continue;
    if (node.dataset.testid === 'run-progress' && node.hasAttribute('value')) window.__seen.progress.push(node.value);
    if (node.dataset.testid === 'run-preview') window.__seen.previews.push(node.getAttribute('src'));
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['value', 'src']});
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """``zishu serve`` over a home with the tiny SD model installed (the studio's default) and Mimi."""
    root = tmp_path_factory.mktemp("studio-browser")
    home = root / "home"
    sd = write_tiny_sd(root / "sd")
    install_resource(home, "alice/tiny-sd", TINY_SD, files={part.name: part for part in sd.iterdir()})
    env = {**os.environ, "ZISHU_HOME": str(home), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app:
        made = app.api("POST", "/api/characters", json={"name": "Mimi", "persona": "A kind fox."})
        assert made.status_code == 201, made.text
        yield app


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"))
    folder = os.environ.get("ZISHU_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"studio-{name}.png"))


def test_generate_with_progress_then_details_copy_reuse_and_delete_with_undo(browser, app, tmp_path):
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        page.set_viewport_size({"width": 1360, "height": 1100})
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.add_init_script(RECORD)
        page.goto(f"{app_origin(page)}/studio")
        expect(page.get_by_test_id("nav-studio")).to_have_attribute("aria-current", "page")
        expect(page.get_by_test_id("studio-form")).to_have_attribute("data-ready", "true", timeout=WAIT)
        expect(page.get_by_test_id("field-model").locator("option").first).to_have_text(
            "Default (alice/tiny-sd@1.0.0)")
        expect(page.get_by_test_id("size-preset")).to_have_value("512x512")
        page.get_by_test_id("size-preset").select_option("768x1152")  # a portrait preset sets both sides
        expect(page.get_by_test_id("field-width")).to_have_value("768")
        expect(page.get_by_test_id("field-height")).to_have_value("1152")
        expect(page.get_by_test_id("gallery-empty")).to_be_visible()

        # a size the model refuses: the server's message shows beside the width, nothing is queued
        page.get_by_test_id("field-prompt").fill("a red cat")
        page.get_by_test_id("field-width").fill("100")
        page.get_by_test_id("field-height").fill("64")
        page.get_by_test_id("generate").click()
        expect(page.get_by_test_id("error-width")).to_have_text("must be a multiple of 8, got 100")
        expect(page.get_by_test_id("field-width")).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_test_id("run")).to_have_count(0)

        page.get_by_test_id("field-width").fill("64")
        page.get_by_test_id("advanced").locator("summary").click()
        page.get_by_test_id("field-steps").fill("6")
        page.get_by_test_id("field-seed").fill("7")
        page.get_by_test_id("generate").click()
        expect(page.get_by_test_id("error-width")).to_be_hidden()
        run = page.get_by_test_id("run")
        expect(run).to_have_attribute("data-status", re.compile("SUCCESS|FAILED"), timeout=WAIT)
        assert run.get_attribute("data-status") == "SUCCESS", run.get_by_test_id("run-error").text_content()
        expect(run.get_by_test_id("run-status")).to_have_text("Done")
        expect(run.get_by_test_id("run-picture")).to_have_count(1)
        seen = page.evaluate("window.__seen")
        assert any(0 < value < 100 for value in seen["progress"]), seen["progress"]  # it moved while drawing
        assert seen["previews"] and all(p.startswith("data:image/jpeg;base64,") for p in seen["previews"])
        expect(run.get_by_test_id("run-percent")).to_have_text("100 %")

        item = page.get_by_test_id("gallery-item")
        expect(item).to_have_count(1)
        expect(page.get_by_test_id("gallery-total")).to_have_text("1 picture")
        image_id = int(item.get_attribute("data-image-id"))
        page.wait_for_function("() => document.querySelector('[data-testid=gallery-item] img').naturalWidth === 64")
        shot(page, tmp_path, "light")

        page.get_by_test_id("theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        item.get_by_test_id("gallery-open").click()
        details = page.get_by_test_id("details")
        expect(details).to_be_visible()
        parameters = app.api("GET", f"/api/studio/gallery/{image_id}").json()["image"]["parameters"]
        assert parameters.startswith("a red cat\n") and "Seed: 7" in parameters and "Size: 64x64" in parameters
        expect(details.get_by_test_id("details-parameters")).to_have_text(parameters)
        expect(details.get_by_test_id("details-download")).to_have_attribute(
            "href", f"/api/studio/gallery/{image_id}/download?format=png")
        details.get_by_test_id("download-format").select_option("webp")
        expect(details.get_by_test_id("details-download")).to_have_attribute(
            "href", f"/api/studio/gallery/{image_id}/download?format=webp")
        details.get_by_test_id("details-copy").click()
        expect(page.get_by_text("Parameters copied.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == parameters
        details.get_by_test_id("details-favourite").click()
        expect(details.get_by_test_id("details-favourite")).to_have_attribute("aria-pressed", "true")
        assert app.api("GET", f"/api/studio/gallery/{image_id}").json()["image"]["favourite"] is True
        shot(page, tmp_path, "details-dark")

        # Reuse puts the picture's request back in a form that has since changed
        page.get_by_test_id("field-prompt").fill("something else")
        page.get_by_test_id("field-steps").fill("30")
        details.get_by_test_id("details-reuse").click()
        expect(details).to_be_hidden()
        expect(page.get_by_test_id("field-prompt")).to_have_value("a red cat")
        expect(page.get_by_test_id("field-steps")).to_have_value("6")
        expect(page.get_by_test_id("field-seed")).to_have_value("7")
        expect(page.get_by_test_id("field-width")).to_have_value("64")
        shot(page, tmp_path, "dark")

        # Delete, then Undo from the toast
        item.get_by_test_id("gallery-open").click()
        details.get_by_test_id("details-delete").click()
        expect(page.get_by_test_id("gallery-item")).to_have_count(0)
        assert app.api("GET", f"/api/studio/gallery/{image_id}").json()["image"]["deleted"] is True
        page.get_by_test_id("undo").click()
        expect(page.get_by_test_id("gallery-item")).to_have_count(1)
        assert app.api("GET", f"/api/studio/gallery/{image_id}").json()["image"]["deleted"] is False

        # a long draw: Cancel once its first preview shows, then Retry queues it again
        page.get_by_test_id("field-steps").fill("150")
        page.get_by_test_id("field-seed").fill("")
        page.get_by_test_id("generate").click()
        long = page.get_by_test_id("run").first
        expect(long.get_by_test_id("run-preview")).to_be_visible(timeout=WAIT)
        long.get_by_test_id("run-cancel").click()
        expect(long.get_by_test_id("run-status")).to_have_text("Cancelled", timeout=WAIT)
        expect(long.get_by_test_id("run-preview")).to_have_count(0)
        long.get_by_test_id("run-retry").click()
        expect(long.get_by_test_id("run-retry")).to_be_hidden()
        # drawing again (cancelling it just as a worker takes it can be missed: jobs.queue's cancel race)
        expect(long.get_by_test_id("run-preview")).to_be_visible(timeout=WAIT)
        long.get_by_test_id("run-cancel").click()
        expect(long.get_by_test_id("run-status")).to_have_text("Cancelled", timeout=WAIT)
        expect(page.get_by_test_id("gallery-item")).to_have_count(1)  # a cancelled draw keeps nothing


def test_a_mask_painted_over_a_gallery_picture_goes_with_the_request(browser, app, tmp_path):
    from playwright.sync_api import expect

    style = {"title": "Watercolor", "prompt": "watercolor painting of {prompt}", "width": 64, "height": 64,
             "steps": 2, "loras": [{"id": "acme/watercolor-lora", "weight": 0.7}]}
    assert app.api("PUT", "/api/studio/styles/watercolor", json=style).status_code == 200
    made = app.api("POST", "/api/studio/images", json={"prompt": "a blue dog", "width": 64, "height": 64,
                                                      "steps": 1, "seed": 3})
    assert made.status_code == 202, made.text
    image = app.wait_job(made.json()["job"]["id"], timeout=240)["result"]["images"][0]

    with watched_page(browser, app.login_url) as page:
        page.goto(f"{app_origin(page)}/studio")
        expect(page.get_by_test_id("studio-form")).to_have_attribute("data-ready", "true", timeout=WAIT)
        # a style whose LoRA is not installed says so, with the install button; picking it fills its settings
        page.get_by_test_id("field-style").select_option("watercolor")
        missing = page.get_by_test_id("style-missing")
        expect(missing).to_contain_text("This style uses the LoRA acme/watercolor-lora, which is not installed.")
        expect(missing.get_by_test_id("install-missing")).to_have_text("Install acme/watercolor-lora")
        missing.get_by_test_id("install-missing").click()  # the Install dialog's plan first: not in this catalog
        expect(page.get_by_test_id("toast").last).to_contain_text("acme/watercolor-lora")
        expect(page.get_by_test_id("install-dialog")).to_be_hidden()
        expect(missing.get_by_test_id("install-missing")).to_be_enabled()
        expect(page.get_by_test_id("field-steps")).to_have_value("2")
        page.get_by_test_id("field-style").select_option("")
        expect(missing).to_be_hidden()

        page.locator(f"[data-image-id='{image['id']}'] [data-testid=gallery-open]").click()
        page.get_by_test_id("details-edit").click()
        editor = page.get_by_test_id("mask-editor")
        expect(editor).to_be_visible()
        expect(page.get_by_test_id("field-prompt")).to_have_value("a blue dog")  # the picture's own request
        editor.get_by_test_id("mask-brush").fill("128")
        # paint a stroke across the top left quarter of the picture
        box = editor.get_by_test_id("mask-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.2, steps=5)
        page.mouse.up()
        shot(page, tmp_path, "mask-light")
        editor.get_by_test_id("mask-done").click()
        expect(page.get_by_test_id("source-mode")).to_contain_text(f"Inpainting picture #{image['id']}")
        page.get_by_test_id("field-strength").fill("0.5")

        with page.expect_request(lambda r: r.url.endswith("/api/studio/images") and r.method == "POST") as sent:
            page.get_by_test_id("generate").click()
        body = sent.value.post_data_json
        assert body["init_image"] == str(image["id"]) and body["strength"] == 0.5
        assert body["width"] == 64 and body["height"] == 64 and body["prompt"] == "a blue dog"
        header, _, data = body["mask"].partition(",")
        assert header == "data:image/png;base64"
        mask = Image.open(io.BytesIO(base64.b64decode(data))).convert("L")
        assert mask.size == (64, 64)
        assert mask.getpixel((16, 13)) == 255  # painted: redraw
        assert mask.getpixel((48, 48)) == 0 and mask.getpixel((16, 50)) == 0  # not painted: keep
        painted = int((np.asarray(mask) > 127).sum())
        assert 0 < painted < 64 * 64 / 2  # a stroke, not the whole picture

        # a ControlNet guide: the chosen picture goes scaled to the requested size, with its kind and weight
        page.get_by_test_id("clear-source").click()
        expect(page.get_by_test_id("source")).to_be_hidden()
        page.get_by_test_id("controlnet").locator("summary").click()
        guide = io.BytesIO()
        Image.new("RGB", (256, 128), (250, 250, 250)).save(guide, "PNG")
        page.get_by_test_id("control-kind").select_option("pose")
        page.get_by_test_id("control-file").set_input_files(
            files=[{"name": "pose.png", "mimeType": "image/png", "buffer": guide.getvalue()}])
        expect(page.get_by_test_id("control-preview")).to_be_visible()
        page.get_by_test_id("control-weight").fill("0.8")
        with page.expect_request(lambda r: r.url.endswith("/api/studio/images") and r.method == "POST") as sent:
            page.get_by_test_id("generate").click()
        control = sent.value.post_data_json["control"]
        assert "init_image" not in sent.value.post_data_json and "mask" not in sent.value.post_data_json
        assert control["type"] == "pose" and control["weight"] == 0.8
        header, _, data = control["image"].partition(",")
        assert header == "data:image/png;base64"
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (64, 32)  # fit in 64×64, its shape kept
        expect(page.get_by_test_id("generate")).to_be_enabled()
        shot(page, tmp_path, "controlnet-light")
        page.get_by_test_id("control-clear").click()
        expect(page.get_by_test_id("control-preview")).to_be_hidden()

        # a picture safe mode blocks (a classifier whose threshold everything passes) stays listed, blurred
        classifier = tmp_path / "check.onnx"
        write_classifier(classifier)
        chosen = app.api("PUT", "/api/settings", json={"studio_image_check": {"model": str(classifier),
                                                                              "threshold": 0.01}})
        assert chosen.status_code == 200, chosen.text
        page.get_by_test_id("field-steps").fill("1")
        page.get_by_test_id("field-seed").fill("11")
        page.get_by_test_id("generate").click()
        expect(page.get_by_test_id("run").first.get_by_test_id("run-status")).to_have_text("Done", timeout=WAIT)
        blocked = page.get_by_test_id("gallery-item").first
        expect(blocked).to_have_class(re.compile(r"\bblocked\b"))
        expect(blocked.get_by_test_id("gallery-blocked")).to_have_text("Blocked by safe mode")
        expect(blocked.get_by_test_id("gallery-blocked")).to_have_attribute("title", re.compile("threshold 0.01"))
        blocked.get_by_test_id("gallery-open").click()
        expect(page.get_by_test_id("details-blocked")).to_contain_text("Blocked by safe mode: ")
        expect(page.get_by_test_id("details-blocked")).to_contain_text("(threshold 0.01)")
        expect(page.get_by_test_id("details-image")).to_have_class(re.compile(r"\bblurred\b"))
        expect(page.get_by_test_id("details-edit")).to_be_disabled()
        shot(page, tmp_path, "blocked-light")
    assert app.api("PUT", "/api/settings", json={"studio_image_check": {}}).status_code == 200


def test_upscale_background_download_avatar_and_drawing_a_character_from_the_panel(browser, app, tmp_path):
    """The studio service's routes behind the panel's buttons (``web/studio.py``: capabilities,
    upscale, background, download, a character's picture, sheet and avatar)."""
    from playwright.sync_api import expect

    # the pictures here are not blocked (another test may have chosen a classifier that blocks everything)
    assert app.api("PUT", "/api/settings", json={"studio_image_check": {}}).status_code == 200
    tiny = {"title": "Tiny", "prompt": "{prompt}", "width": 64, "height": 64, "steps": 1}
    assert app.api("PUT", "/api/studio/styles/tiny", json=tiny).status_code == 200
    made = app.api("POST", "/api/studio/images", json={"prompt": "a green frog", "style": "tiny", "seed": 21})
    assert made.status_code == 202, made.text
    image = app.wait_job(made.json()["job"]["id"], timeout=240)["result"]["images"][0]

    with watched_page(browser, app.login_url) as page:
        page.set_viewport_size({"width": 1360, "height": 1100})
        page.goto(f"{app_origin(page)}/studio")
        expect(page.get_by_test_id("studio-form")).to_have_attribute("data-ready", "true", timeout=WAIT)
        opener = page.locator(f"[data-image-id='{image['id']}'] [data-testid=gallery-open]")
        opener.click()
        details = page.get_by_test_id("details")
        # nothing installed upscales or clears backgrounds yet: the drawer says so and offers nothing to click
        expect(details.get_by_test_id("improve-capability")).to_be_visible()
        expect(details.get_by_test_id("improve-capability")).to_contain_text("upscale")
        expect(details.get_by_test_id("details-upscale")).to_be_disabled()
        details.get_by_test_id("details-close").click()

        home = Path(app.env["ZISHU_HOME"])
        install_resource(home, "acme/up", {"format": "onnx", "role": "upscale"},
                         files={"up.onnx": write_tiny_upscaler(tmp_path / "up.onnx")})
        install_resource(home, "acme/cut", {"format": "onnx", "role": "background"},
                         files={"seg.onnx": write_tiny_segmenter(tmp_path / "seg.onnx")})
        page.reload()
        expect(page.get_by_test_id("studio-form")).to_have_attribute("data-ready", "true", timeout=WAIT)
        before = page.get_by_test_id("gallery-item").count()  # earlier tests' pictures too
        opener.click()
        expect(details.get_by_test_id("improve-capability")).to_be_hidden()
        details.get_by_test_id("details-upscale").click()
        expect(page.get_by_text("Upscaled to 128×128")).to_be_visible(timeout=WAIT)
        expect(details.get_by_test_id("details-title")).not_to_have_text(f"Picture #{image['id']}")
        expect(details.get_by_test_id("details-image")).to_have_js_property("naturalWidth", 128)
        details.get_by_test_id("details-background").click()
        expect(page.get_by_text("Background removed")).to_be_visible(timeout=WAIT)
        expect(page.get_by_test_id("gallery-item")).to_have_count(before + 2)  # two new pictures, the first kept
        made_from = details.get_by_test_id("details-parent-open")  # the cut-out names the upscaled picture
        upscaled = int(made_from.text_content().removeprefix("picture #"))
        made_from.click()
        expect(details.get_by_test_id("details-title")).to_have_text(f"Picture #{upscaled}")
        expect(made_from).to_have_text(f"picture #{image['id']}")  # which names the drawn one
        shot(page, tmp_path, "made-from")

        details.get_by_test_id("download-format").select_option("webp")
        with page.expect_download() as download:
            details.get_by_test_id("details-download").click()
        with Image.open(download.value.path()) as webp:
            assert webp.format == "WEBP" and webp.size == (128, 128)

        details.get_by_test_id("avatar-character").select_option("local/mimi")
        details.get_by_test_id("avatar-emotion").select_option("happy")
        details.get_by_test_id("details-avatar").click()
        expect(page.get_by_text("now shows this picture when happy")).to_be_visible()
        details.get_by_test_id("details-close").click()

        # Mimi drawn, then her expression sheet, which becomes her avatar
        page.get_by_test_id("field-character").select_option("local/mimi")
        page.get_by_test_id("field-style").select_option("tiny")
        page.get_by_test_id("draw-character").click()
        drawn = page.get_by_test_id("run").first
        expect(drawn.get_by_test_id("run-status")).to_have_text("Done", timeout=WAIT)
        expect(drawn.get_by_test_id("run-picture")).to_have_count(1)
        expect(drawn.get_by_test_id("run-title")).to_have_text("Draw local/mimi")
        drawn.get_by_test_id("run-picture").click()  # its details, Mimi's appearance in its prompt
        expect(details.get_by_test_id("details-parameters")).to_contain_text("fox")
        details.get_by_test_id("details-close").click()
        page.get_by_test_id("expression-sheet").click()
        sheet = page.get_by_test_id("sheet")
        expect(sheet.get_by_test_id("sheet-use")).to_be_enabled(timeout=WAIT)
        emotions = [run.get_attribute("data-emotion") for run in sheet.get_by_test_id("run").all()]
        assert len(emotions) >= 2 and "happy" in emotions, emotions
        expect(sheet.get_by_test_id("run").first.get_by_test_id("run-title")).to_have_text(emotions[0])
        sheet.get_by_test_id("sheet-use").click()
        expect(page.get_by_text("local/mimi shows the new expression sheet.")).to_be_visible()
        shot(page, tmp_path, "character-light")
    assert app.api("GET", "/api/characters/local/mimi").json()["character"]["avatar"]["image"]
    for emotion in emotions:  # each emotion's picture is the companion's now
        picture = app.api("GET", f"/api/avatar/local/mimi/sheet/{emotion}")
        assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).size == (64, 64), emotion


def test_with_no_image_model_the_panel_offers_the_starter_model_before_and_after_generate(browser, tmp_path):
    from playwright.sync_api import expect

    env = {**os.environ, "ZISHU_HOME": str(tmp_path / "home")}  # a new user's: nothing installed
    env.pop("ZISHU_QUEUE", None)
    with AppProcess(env) as app, watched_page(browser, app.login_url) as page:
        assert app.api("GET", "/api/studio/options").json()["starter_model"] == "stabilityai/sd-turbo"
        refused = app.api("POST", "/api/studio/images", json={"prompt": "a fox"})
        assert refused.status_code == 404
        assert refused.json()["error"]["install"] == "stabilityai/sd-turbo"  # what the page's button installs
        page.goto(f"{app_origin(page)}/studio")
        expect(page.get_by_test_id("studio-form")).to_have_attribute("data-ready", "true", timeout=WAIT)
        missing = page.get_by_test_id("model-missing")
        expect(missing).to_contain_text("No image model is installed yet")
        expect(missing.get_by_test_id("install-missing")).to_have_text("Install stabilityai/sd-turbo")

        page.get_by_test_id("field-prompt").fill("a fox with a lantern")
        page.get_by_test_id("generate").click()
        error = page.get_by_test_id("error-model")
        expect(error).to_contain_text("no image model is installed")
        expect(page.get_by_test_id("install-missing")).to_have_count(1)  # the API's install is the one offered

        missing.get_by_test_id("install-missing").click()  # the Install dialog first, as every Install button
        dialog = page.get_by_test_id("install-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("stabilityai/sd-turbo")
        dialog.get_by_test_id("install-cancel").click()
        expect(missing.get_by_test_id("install-missing")).to_be_enabled()
        shot(page, tmp_path, "no-model")
    assert not (tmp_path / "home" / "resources" / "stabilityai").exists()  # cancelled: nothing installed
