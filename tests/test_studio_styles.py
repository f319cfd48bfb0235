"""Studio styles: the built-in YAML presets, the user's own (files and the app's routes, a bad file
named and never hiding the others, delete with undo), a catalog LoRA's ``spec.style``, drawing a
request in a style, and a style whose LoRA is missing naming the catalog id to install."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Blueprint

from zishu.catalog.client import CatalogClient
from zishu.catalog.manifest import RESOURCE
from zishu.catalog.reading import parse_manifest
from zishu.errors import ManifestError, NotFound, ResourceNotAvailable, UsageError
from zishu.studio import styles as st

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "host/zishu/catalog/snapshot"


def write(home: Path, name: str, text: str) -> Path:
    path = home / "styles" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def lora(**spec) -> dict:
    return {"id": "acme/ink-lora", "kind": "lora", "name": "Ink wash", "summary": "Ink wash painting.",
            "license": "MIT", "maintainers": ["acme"], "versions": [{"version": "1.0.0", "released": "2026-01-01"}],
            "spec": {"target": "image", "base_model": "sdxl", **spec}}


# ---- the presets ---------------------------------------------------------------------------------


def test_the_built_in_styles_ship_in_the_package(tmp_path):
    found = st.styles(tmp_path)
    assert {"anime", "cartoon", "realistic", "pixel-art"} <= set(found)
    for style in found.values():
        assert style.source == "built-in" and "{prompt}" in style.prompt and style.title and style.negative
    assert found["pixel-art"].title == "Pixel art"
    assert (st.BUILT_IN / "anime.yaml").is_file()  # a file in the package (pyproject's package-data)


def test_a_user_style_is_read_from_the_home_and_overrides_a_built_in_by_name(tmp_path):
    write(tmp_path, "anime", "title: My anime\nprompt: 'my {prompt}'\nwidth: 832\nheight: 1216\n")
    write(tmp_path, "watercolor", "prompt: 'watercolor painting of {prompt}'\nnegative: photo\n"
                                  "loras: [{id: acme/wash, weight: 0.6}]\nsteps: 20\nguidance: 6.5\n"
                                  "scheduler: DPM++ 2M Karras\n")
    found = st.styles(tmp_path)
    assert found["anime"].title == "My anime" and found["anime"].source == "user" and found["anime"].width == 832
    water = found["watercolor"]
    assert water.title == "Watercolor" and water.loras[0].id == "acme/wash" and water.loras[0].weight == 0.6
    assert (water.steps, water.guidance, water.scheduler) == (20, 6.5, "DPM++ 2M Karras")
    assert found["cartoon"].source == "built-in"


@pytest.mark.parametrize(("text", "field", "says"), [
    ("prompt: 'no placeholder'\n", "prompt", "must contain {prompt}"),
    ("prompt: '{prompt}'\nsteps: 0\n", "steps", "greater than or equal to 1"),
    ("prompt: '{prompt}'\nwidth: 513\n", "width", "multiple of 8"),
    ("prompt: '{prompt}'\nloras: [{id: 'Not An Id'}]\n", "loras[0].id", "pattern"),
    ("prompt: '{prompt}'\ncolour: red\n", "colour", "unknown field"),
    ("name: other\nprompt: '{prompt}'\n", "name", "file is named bad.yaml"),
    ("prompt: [unclosed\n", "line 2", "invalid YAML"),
    ("- a list\n", "", "a style must be a mapping"),
], ids=["template", "steps", "width", "lora-id", "unknown", "name", "yaml", "not-mapping"])
def test_a_bad_user_file_is_named_with_its_field_and_never_hides_the_others(tmp_path, text, field, says):
    write(tmp_path, "bad", text)
    write(tmp_path, "good", "prompt: 'good {prompt}'\n")
    found = st.styles(tmp_path)
    assert "bad" not in found and "good" in found and "anime" in found
    [problem] = st.style_problems(tmp_path)
    assert problem.file == "styles/bad.yaml" and problem.field.startswith(field) and says in problem.message
    assert str(problem).startswith(f"styles/bad.yaml: {field}")


def test_a_file_name_that_is_no_style_name_is_reported(tmp_path):
    write(tmp_path, "Bad Name", "prompt: '{prompt}'\n")
    [problem] = st.style_problems(tmp_path)
    assert problem.file == "styles/Bad Name.yaml" and "not a style name" in problem.message


# ---- a catalog LoRA's style ----------------------------------------------------------------------


def test_the_catalog_lcm_lora_carries_a_style(tmp_path):
    catalog = CatalogClient(str(SNAPSHOT), cache_dir=tmp_path / "cache")
    found = st.styles(tmp_path, catalog)
    fast = found["lcm-fast"]
    assert fast.source == "catalog" and fast.lora == "latent-consistency/lcm-lora-sdv1-5"
    assert [(x.id, x.weight) for x in fast.loras] == [("latent-consistency/lcm-lora-sdv1-5", 1.0)]
    assert (fast.steps, fast.guidance, fast.scheduler) == (6, 1.5, "LCM")
    assert st.missing_loras(fast, {}) == ["latent-consistency/lcm-lora-sdv1-5"]
    assert st.missing_loras(fast, {"latent-consistency/lcm-lora-sdv1-5": {"1.0.0": {}}}) == []


def test_a_lora_style_is_named_after_the_lora_and_puts_its_trigger_words_first():
    resource = RESOURCE.validate_python(lora(trigger_words=["inkwash"], recommended_weight=0.7,
                                             style={"prompt": "{prompt}, monochrome", "negative": "color"}))
    style = st.lora_style(resource)
    assert style is not None and style.name == "ink-lora" and style.title == "Ink wash"
    assert style.prompt == "inkwash, {prompt}, monochrome" and style.loras[0].weight == 0.7
    assert st.apply_style({"prompt": "a crane"}, style)["prompt"] == "inkwash, a crane, monochrome"


def test_only_an_image_lora_can_carry_a_style_and_the_style_is_validated():
    with pytest.raises(ManifestError, match="only an image LoRA"):
        parse_manifest({**lora(style={"prompt": "{prompt}"}), "spec": {"target": "llm", "base_model": "qwen",
                                                                        "style": {"prompt": "{prompt}"}}}, "x.yaml")
    with pytest.raises(ManifestError, match=r"x.yaml: spec.style.prompt: .*must contain \{prompt\}"):
        parse_manifest(lora(style={"prompt": "no place"}), "x.yaml")


def test_a_catalog_style_never_hides_a_built_in_and_a_user_style_hides_both(tmp_path):
    class OneLora:
        def index(self):
            return [{"id": "acme/ink-lora", "kind": "lora"}, {"id": "acme/gone", "kind": "lora"}]

        def resource(self, id):
            if id == "acme/gone":
                raise NotFound("gone")  # an unreadable entry is left out, not fatal
            return RESOURCE.validate_python(lora(style={"name": "anime", "prompt": "ink {prompt}"}))

    assert st.styles(tmp_path, OneLora())["anime"].source == "built-in"
    write(tmp_path, "anime", "prompt: 'mine {prompt}'\n")
    assert st.styles(tmp_path, OneLora())["anime"].source == "user"


# ---- using a style -------------------------------------------------------------------------------


def test_apply_style_fills_the_template_joins_negatives_adds_loras_and_defaults_only_unset_fields():
    style = st.parse_style({"prompt": "masterpiece, {prompt}, soft light", "negative": "lowres, text",
                            "loras": [{"id": "acme/a", "weight": 0.5}, {"id": "acme/b", "weight": 0.9}],
                            "width": 640, "height": 960, "steps": 12, "guidance": 4.0, "scheduler": "Euler a"},
                           "x", name="soft")
    fields = {"prompt": "a fox", "negative_prompt": "blurry", "loras": [{"id": "acme/b", "weight": 0.2}],
              "width": 512, "height": None, "steps": 30, "seed": 7}
    out = st.apply_style(fields, style)
    assert out["prompt"] == "masterpiece, a fox, soft light"
    assert out["negative_prompt"] == "blurry, lowres, text"
    assert out["loras"] == [{"id": "acme/b", "weight": 0.2}, {"id": "acme/a", "weight": 0.5}]  # the user's weight wins
    assert (out["width"], out["height"], out["steps"]) == (512, 960, 30)
    assert (out["guidance"], out["scheduler"]) == (4.0, "Euler a")
    assert out["seed"] == 7 and out["style"] == "soft"
    assert fields["prompt"] == "a fox"  # the caller's fields are left as they were


def test_an_empty_prompt_leaves_no_dangling_commas():
    assert st.fill_template("anime style, {prompt}, cel shading", "") == "anime style, cel shading"
    assert st.fill_template("{prompt}, pixel art", "  ") == "pixel art"


def test_a_style_whose_lora_is_missing_names_the_catalog_id_to_install(tmp_path):
    style = st.parse_style({"prompt": "{prompt}", "loras": [{"id": "acme/a"}, {"id": "acme/b"}]}, "x", name="two")
    assert st.missing_loras(style, {"acme/a"}) == ["acme/b"]
    st.require_loras(style, {"acme/a", "acme/b"})
    with pytest.raises(ResourceNotAvailable) as caught:
        st.require_loras(style, {"acme/a"})
    assert caught.value.install == "acme/b" and "zishu install acme/b" in str(caught.value)
    assert caught.value.code == "MODEL_NOT_AVAILABLE"


# ---- the app's routes ----------------------------------------------------------------------------


@pytest.fixture
def client(runtime):
    from zishu.web.app import create_app
    from zishu.web.styles import styles

    app = create_app(runtime, "s3cret")
    if "styles" not in app.blueprints:
        app.register_blueprint(styles)
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    return client


def test_the_styles_route_lists_every_style_with_its_missing_loras(client, runtime):
    write(runtime.home, "broken", "steps: many\n")
    answer = client.get("/api/studio/styles").get_json()
    by_name = {s["name"]: s for s in answer["styles"]}
    assert {"anime", "cartoon", "realistic", "pixel-art"} <= set(by_name)
    assert by_name["anime"]["source"] == "built-in" and by_name["anime"]["missing"] == []
    if "lcm-fast" in by_name:  # the catalog this home uses is the bundled snapshot
        assert by_name["lcm-fast"]["missing"] == ["latent-consistency/lcm-lora-sdv1-5"]
    assert answer["problems"] and answer["problems"][0].startswith("styles/broken.yaml: ")


def test_a_style_is_saved_from_the_app_validated_deleted_and_restored(client, runtime):
    body = {"title": "Ink", "prompt": "ink painting of {prompt}", "negative": "color",
            "loras": [{"id": "acme/ink", "weight": 0.8}], "steps": 18}
    saved = client.put("/api/studio/styles/ink", json=body)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["style"]["missing"] == ["acme/ink"] and saved.get_json()["previous"] is None
    path = runtime.home / "styles" / "ink.yaml"
    assert st.read_style(path).model_dump(exclude_none=True) == {**body, "name": "ink"}

    bad = client.put("/api/studio/styles/ink", json={**body, "steps": 0})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "MANIFEST_INVALID"
    assert bad.get_json()["error"]["message"].startswith("styles/ink.yaml: steps: ")
    assert st.read_style(path).steps == 18  # the good file is untouched

    changed = client.put("/api/studio/styles/ink", json={**body, "steps": 24}).get_json()
    assert changed["previous"]["steps"] == 18 and st.read_style(path).steps == 24
    assert client.put("/api/studio/styles/Ink%20Wash", json=body).status_code == 400

    deleted = client.delete("/api/studio/styles/ink")
    assert deleted.status_code == 200 and deleted.get_json() == {"deleted": "ink", "built_in_shown": False}
    assert not path.exists() and "ink" not in {s["name"] for s in client.get("/api/studio/styles").get_json()["styles"]}
    restored = client.post("/api/studio/styles/ink/restore")
    assert restored.status_code == 200 and restored.get_json()["style"]["steps"] == 24 and path.is_file()
    assert client.post("/api/studio/styles/ink/restore").status_code == 404  # nothing left in the trash


def test_a_built_in_style_cannot_be_deleted_but_a_users_override_can(client, runtime):
    gone = client.delete("/api/studio/styles/anime")
    assert gone.status_code == 404 and "built-in" in gone.get_json()["error"]["message"]
    client.put("/api/studio/styles/anime", json={"prompt": "mine {prompt}"})
    assert st.styles(runtime.home)["anime"].source == "user"
    assert client.delete("/api/studio/styles/anime").get_json()["built_in_shown"] is True
    assert st.styles(runtime.home)["anime"].source == "built-in"


def test_a_missing_lora_error_lists_the_ids_to_install_in_the_api_body(runtime):
    from zishu.web.app import create_app

    style = st.parse_style({"prompt": "{prompt}", "loras": [{"id": "acme/ink"}]}, "x", name="ink")
    probe = Blueprint("probe", __name__)

    @probe.get("/api/probe")
    def _probe():
        st.require_loras(style, runtime.registry.load())

    app = create_app(runtime, "s3cret")
    app.register_blueprint(probe)
    answer = app.test_client().get("/api/probe", headers={"X-Zishu-Token": "s3cret"})
    assert answer.status_code == 404
    assert answer.get_json()["error"]["install"] == "acme/ink"
    assert "zishu install acme/ink" in answer.get_json()["error"]["message"]


def test_style_names_are_checked():
    with pytest.raises(UsageError, match="not a style name"):
        st.style_name("../etc")
