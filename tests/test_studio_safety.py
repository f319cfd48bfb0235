"""The studio's safety: the prompt filter (per language, the user's lists edited through the API),
safe mode (forced on for all-ages characters), the check_image hook with the built-in ONNX image
check on a tiny random classifier, plugin crashes kept apart, and the blur of blocked pictures."""

from __future__ import annotations

import logging

import pytest
from PIL import Image, ImageStat

from conftest import install_resource, make_manifest
from tiny_classifier import expected_scores, write_classifier
from zishu import plugins
from zishu.settings import Settings
from zishu.studio.safety import (
    blurred,
    check_images,
    check_prompt,
    image_check_context,
    image_check_status,
    safe_mode_for,
)

COLOUR = (200, 30, 90)


@pytest.fixture
def plugin(request):
    """Register plugin objects for one test (as a third party's would load), and forget them after."""
    names: list[str] = []

    def register(obj, name: str):
        plugins.pm.register(obj, name=name)
        names.append(name)
        return obj

    yield register
    for name in names:
        plugins.pm.unregister(name=name)
        plugins.errors.pop(name, None)


@pytest.fixture
def image_check(plugin):
    import zishu_image_check

    if plugins.pm.get_plugin("image_check") is zishu_image_check:  # already loaded from its entry point
        return zishu_image_check
    return plugin(zishu_image_check, "image_check")


# ---- the prompt filter ----------------------------------------------------------------------


def test_english_entries_match_whole_words_whatever_the_case_or_width(tmp_path):
    verdict = check_prompt("A NUDE portrait by the sea", True, tmp_path)
    assert verdict is not None and verdict.blocked and verdict.words == ("nude",)
    assert "nude" in verdict.reason and verdict.by == ("prompt filter",)
    assert check_prompt("ｎｕｄｅ figure", True, tmp_path).words == ("nude",)  # full width, NFKC
    assert check_prompt("explicit\n  sex", True, tmp_path).words == ("explicit sex", "sex")
    assert check_prompt("Essex countryside, a sextant, denuded hills", True, tmp_path) is None
    assert check_prompt("A NUDE portrait", False, tmp_path) is None  # safe mode off: no filter


def test_chinese_and_japanese_entries_match_inside_the_text(tmp_path):
    assert check_prompt("一个裸体的女孩站在海边", True, tmp_path).words == ("裸体",)
    assert check_prompt("ヌード写真", True, tmp_path).words == ("ヌード",)
    assert check_prompt("ｴﾛい絵", True, tmp_path).words == ("エロ",)  # half-width kana, NFKC
    assert check_prompt("裸体nude", True, tmp_path).words == ("nude", "裸体")  # Latin word right after Han
    assert check_prompt("一个女孩在海边看日落, 裸足", True, tmp_path) is None


@pytest.fixture
def client(runtime):
    from zishu.web.app import create_app
    from zishu.web.safety import safety

    app = create_app(runtime, "s3cret")
    if "safety" not in app.blueprints:
        app.register_blueprint(safety)
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return client


def test_the_user_edits_a_word_list_from_the_app_and_it_extends_the_built_in_one(client, runtime):
    home = runtime.home
    en = client.get("/api/studio/filters/en").get_json()
    assert "nude" in en["entries"] and en["user"] == "" and "nude" in en["builtin"]

    answer = client.put("/api/studio/filters/en", json={"text": "# mine\nDragon slayer\n-nude\n"})
    assert answer.status_code == 200, answer.get_json()
    saved = answer.get_json()
    assert "dragon slayer" in saved["entries"] and "nude" not in saved["entries"] and "naked" in saved["entries"]
    assert (home / "filters" / "en.txt").read_text(encoding="utf-8") == "# mine\nDragon slayer\n-nude\n"
    assert check_prompt("the dragon slayer rests", True, home).words == ("dragon slayer",)
    assert check_prompt("a nude statue", True, home) is None  # taken out by the user
    assert check_prompt("a naked statue", True, home).words == ("naked",)

    assert client.put("/api/studio/filters/fr", json={"text": "nu intégral"}).status_code == 200
    assert "fr" in client.get("/api/studio/safety").get_json()["languages"]
    assert check_prompt("Un NU INTÉGRAL", True, home).words == ("nu intégral",)

    bad = client.put("/api/studio/filters/EN!", json={"text": "x"})
    assert bad.status_code == 400 and bad.get_json()["error"]["message"].startswith("lang:")
    bad = client.put("/api/studio/filters/en", json={"text": 5})
    assert bad.status_code == 400 and bad.get_json()["error"]["message"].startswith("text:")
    assert (home / "filters" / "en.txt").exists()  # a refused edit loses nothing

    assert client.put("/api/studio/filters/en", json={"text": ""}).get_json()["user"] == ""
    assert not (home / "filters" / "en.txt").exists()
    assert check_prompt("a nude statue", True, home).words == ("nude",)


# ---- safe mode ------------------------------------------------------------------------------


def _character(audience: str | None):
    from zishu.catalog import RESOURCE

    spec = {"persona": "A test character.", **({"audience": audience} if audience else {})}
    return RESOURCE.validate_python(make_manifest("alice/hero", kind="character", spec=spec))


def test_safe_mode_is_on_by_default_and_forced_on_for_all_ages_characters():
    assert Settings().studio_safe_mode is True
    off = Settings(studio_safe_mode=False)
    assert safe_mode_for(off, _character("all-ages")) is True
    assert safe_mode_for(off, _character("all-ages").spec) is True
    assert safe_mode_for(off, {"spec": {"audience": "all-ages"}}) is True
    assert safe_mode_for(off, _character("adult")) is False
    assert safe_mode_for(off, _character(None)) is False
    assert safe_mode_for(off, None) is False
    assert safe_mode_for(Settings(), _character("adult")) is True


def test_a_character_audience_outside_the_three_is_refused_by_name():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="audience"):
        _character("kids")


def test_the_safety_settings_are_checked_by_name(runtime):
    from zishu import settings
    from zishu.errors import UsageError

    with pytest.raises(UsageError, match="studio_safe_mode"):
        settings.change({"studio_safe_mode": "yes"})
    with pytest.raises(UsageError, match="threshold"):
        settings.change({"studio_image_check": {"threshold": 2}})
    chosen = settings.change({"studio_safe_mode": False, "studio_image_check": {"model": " ", "threshold": 0.7}})
    assert chosen.studio_safe_mode is False and chosen.studio_image_check == {"threshold": 0.7}
    assert settings.load() == chosen


# ---- the image check ------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_the_built_in_image_check_blocks_by_its_threshold(tmp_path, image_check, layout):
    model = tmp_path / "classifier.onnx"
    weights = write_classifier(model, layout=layout)
    expected = expected_scores(weights, COLOUR, layout)
    picture = Image.new("RGB", (40, 24), COLOUR)  # one colour: resizing keeps every pixel
    context = {"safe_mode": True, "prompt": "", "character": None, "image_check_model": str(model)}

    [below] = check_images([picture], {**context, "image_check_threshold": expected["nsfw"] - 0.01})
    assert below.blocked and below.by == ("image_check",)
    assert "nsfw" in below.reason and "safe mode" in below.reason
    assert below.scores == pytest.approx(expected, abs=1e-4)

    [above] = check_images([picture], {**context, "image_check_threshold": expected["nsfw"] + 0.01})
    assert not above.blocked and above.reason == "" and above.scores == pytest.approx(expected, abs=1e-4)

    [unsafe_mode] = check_images([picture], {**context, "safe_mode": False, "image_check_threshold": 0.01})
    assert not unsafe_mode.blocked and unsafe_mode.scores  # scored, not blocked


def test_an_installed_image_check_model_is_found_and_its_own_threshold_used(tmp_path, runtime, image_check):
    model = tmp_path / "model.onnx"
    weights = write_classifier(model, metadata={"threshold": "0.01"})
    install_resource(runtime.home, "alice/image-check", {"format": "onnx", "role": "image-check"}, files={
        "model.onnx": model})
    status = image_check_status(runtime.registry, Settings())
    assert status["installed"] and status["model"].endswith("alice/image-check/1.0.0")

    context = image_check_context(runtime.registry, Settings(), safe_mode=True, prompt="a cat")
    assert context["image_check_model"] == status["model"] and context["image_check_threshold"] is None
    [verdict] = check_images([Image.new("RGB", (8, 8), COLOUR)], context)
    assert verdict.blocked and "threshold 0.01" in verdict.reason
    assert verdict.scores == pytest.approx(expected_scores(weights, COLOUR), abs=1e-4)


def test_without_a_classifier_the_plugin_says_so_once_and_the_ui_names_what_to_install(
        tmp_path, runtime, image_check, caplog, monkeypatch):
    monkeypatch.setattr(image_check, "_told_missing", False)
    context = image_check_context(runtime.registry, Settings(), safe_mode=True)
    assert context["image_check_model"] is None
    with caplog.at_level(logging.WARNING, logger="zishu_image_check"):
        verdicts = check_images([Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))], context)
    assert [v.blocked for v in verdicts] == [False, False] and verdicts[0].by == ()
    told = [r for r in caplog.records if "no image classifier is installed" in r.getMessage()]
    assert len(told) == 1
    status = image_check_status(runtime.registry, Settings())
    assert not status["installed"] and "image-check" in status["message"]

    chosen = Settings(studio_image_check={"model": "alice/missing"})
    assert "alice/missing" in image_check_status(runtime.registry, chosen)["message"]
    assert image_check_context(runtime.registry, chosen, safe_mode=True)["image_check_model"] is None


def test_a_plugin_that_crashes_does_not_end_the_check_and_any_block_blocks(plugin):
    from zishu.hookspecs import hookimpl

    class Crashing:
        @hookimpl
        def check_image(self, image, context):
            raise RuntimeError("classifier on fire")

    class Strict:
        @hookimpl
        def check_image(self, image, context):
            return {"blocked": True, "reason": "too red", "scores": {"red": 0.9}}

    class Lenient:
        @hookimpl
        def check_image(self, image, context):
            return {"blocked": False, "reason": "", "scores": {"red": 0.1}}

    class Confused:
        @hookimpl
        def check_image(self, image, context):
            return "yes"

    for name, obj in (("crashing", Crashing()), ("strict", Strict()), ("lenient", Lenient()),
                      ("confused", Confused())):
        plugin(obj, name)
    [verdict] = check_images([Image.new("RGB", (8, 8), COLOUR)], {"safe_mode": True})
    assert verdict.blocked and verdict.reason == "too red"
    assert set(verdict.by) == {"strict", "lenient"}
    assert verdict.scores == {"strict:red": 0.9, "lenient:red": 0.1}
    assert "classifier on fire" in verdict.problems["crashing"] and "yes" in verdict.problems["confused"]
    assert "classifier on fire" in plugins.errors["crashing"]  # shown in the Plugins panel
    assert verdict.to_dict()["blocked"] is True


def test_a_blocked_picture_is_kept_blurred_at_its_size():
    picture = Image.new("RGB", (96, 64))
    for x in range(96):
        for y in range(64):
            picture.putpixel((x, y), (255, 255, 255) if (x // 4 + y // 4) % 2 else (0, 0, 0))
    soft = blurred(picture)
    assert soft.size == picture.size and soft.mode == "RGB"
    assert max(ImageStat.Stat(soft).stddev) < max(ImageStat.Stat(picture).stddev) / 5
    assert blurred(picture.convert("RGBA")).mode == "RGBA"
    assert blurred(Image.new("L", (1, 1))).size == (1, 1)


def test_the_character_editor_marks_a_character_for_all_ages_and_safe_mode_follows(characters_client):
    from zishu.companion.characters import get_character

    made = characters_client.post("/api/characters", json={"name": "Mimi", "persona": "A kind fox.",
                                                           "audience": "all-ages"})
    assert made.status_code == 201, made.get_json()
    rid = made.get_json()["character"]["id"]
    assert made.get_json()["character"]["audience"] == "all-ages"
    runtime = characters_client.application.config["ZISHU_RUNTIME"]
    assert get_character(runtime, rid)["audience"] == "all-ages"
    assert safe_mode_for(Settings(studio_safe_mode=False), get_character(runtime, rid)) is True

    bad = characters_client.put(f"/api/characters/{rid}", json={"audience": "kids"})
    assert bad.status_code == 400 and "audience" in bad.get_json()["error"]["message"]
    assert characters_client.put(f"/api/characters/{rid}", json={"audience": None}).status_code == 200
    assert safe_mode_for(Settings(studio_safe_mode=False), get_character(runtime, rid)) is False
