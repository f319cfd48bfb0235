"""Drawing a character: "Draw this character" (appearance, image_style, LoRA, a seed stable per
character), the expression sheet (one request per emotion, same seed and LoRA), and the sheet set as
the 2D avatar through the character save path (a new version, undone by Undo; kept across edits
that keep the picture), served per emotion by the avatar routes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from conftest import install_resource
from zishu.companion import characters as chars
from zishu.companion.avatar import avatar_info, sheet_file
from zishu.companion.brain import Character
from zishu.errors import NotFound, UsageError
from zishu.studio import characters as drawing
from zishu.studio.styles import apply_style, styles


def picture(colour: tuple[int, int, int], size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


RED, GREEN, BLUE = picture((200, 0, 0), 10), picture((0, 200, 0), 12), picture((0, 0, 200), 14)


def make(runtime, **fields) -> Character:
    rid = chars.create_character(runtime, {"name": "Aoi", "persona": "You are {{char}}, a fox spirit.", **fields})
    return Character.installed(runtime.registry, rid)


def test_draw_this_character_uses_its_appearance_style_lora_and_a_stable_seed(runtime):
    aoi = make(runtime, image_style={"prompt_prefix": "1girl, fox ears, silver hair, red eyes",
                                     "negative_prompt": "extra tails", "lora": "acme/aoi-lora",
                                     "lora_weight": 0.7, "style": "anime"})
    fields = drawing.draw_request(aoi, prompt="reading under a tree")
    assert fields == {"prompt": "1girl, fox ears, silver hair, red eyes, reading under a tree",
                      "negative_prompt": "extra tails", "character": aoi.id,
                      "loras": [{"id": "acme/aoi-lora", "weight": 0.7}], "style": "anime",
                      "seed": drawing.character_seed(aoi.id)}
    assert drawing.draw_request(aoi)["seed"] == fields["seed"]  # the same character, the same seed
    assert drawing.character_seed("local/other") != fields["seed"] and 0 <= fields["seed"] < 2**32
    assert drawing.draw_request(aoi, style="pixel-art")["style"] == "pixel-art"
    # the image job applies the named style like any request's
    drawn = apply_style(fields, styles(runtime.home)["anime"])
    assert drawn["prompt"].startswith("anime style, 1girl, fox ears") and "extra tails" in drawn["negative_prompt"]
    assert drawn["loras"] == [{"id": "acme/aoi-lora", "weight": 0.7}] and drawn["seed"] == fields["seed"]


def test_without_an_image_style_the_persona_gives_the_appearance(runtime):
    aoi = make(runtime, persona="{{char}} is a fox spirit with silver hair. She teases {{user}}. She loves tea.")
    fields = drawing.draw_request(aoi)
    assert fields["prompt"].startswith("Aoi is a fox spirit with silver hair. She teases you.")
    assert fields["loras"] == [] and "style" not in fields and fields["negative_prompt"] == ""
    assert drawing.character_requests(aoi) == [fields]


def test_the_expression_sheet_is_one_request_per_emotion_with_the_same_seed_and_lora(runtime):
    aoi = make(runtime, image_style={"prompt_prefix": "fox girl", "lora": "acme/aoi-lora"},
               emotions={"开心": {"expression": "F05"}, "happy": {"expression": "F05"}, "sad": {"expression": "F04"},
                         "sulky": {"expression": "F03"}})
    sheet = drawing.expression_sheet_requests(aoi)
    assert list(sheet) == ["happy", "sad", "sulky"]  # 开心 and happy are one emotion
    assert {r["seed"] for r in sheet.values()} == {drawing.character_seed(aoi.id)}
    assert all(r["loras"] == [{"id": "acme/aoi-lora", "weight": 0.8}] for r in sheet.values())
    assert sheet["happy"]["prompt"].startswith("fox girl, happy expression")
    assert "sulky expression" in sheet["sulky"]["prompt"]
    assert drawing.character_requests(aoi, sheet=True) == list(sheet.values())


def test_a_character_without_an_emotion_map_gets_the_default_sheet(runtime):
    assert list(drawing.expression_sheet_requests(make(runtime))) == list(drawing.DEFAULT_SHEET)


def test_the_sheet_becomes_the_avatar_as_a_new_version_that_undo_takes_back(runtime):
    aoi = make(runtime, emotions={"开心": {"expression": "F05"}})
    saved = drawing.set_avatar_sheet(runtime, aoi.id, {"neutral": RED, "开心": GREEN, "Sad": BLUE})
    assert saved["changed"] and saved["version"] == "1.0.1" and saved["forked_from"] is None
    now = Character.installed(runtime.registry, aoi.id)
    assert now.spec.avatar is not None and set(now.spec.avatar.sheet) == {"neutral", "happy", "sad"}
    assert now.spec.avatar.image == now.spec.avatar.sheet["neutral"]
    for emotion, data in (("neutral", RED), ("happy", GREEN), ("sad", BLUE)):
        path = now.folder / now.spec.avatar.sheet[emotion]
        assert path.read_bytes() == data and path.parent.name == "sheet"  # one file per emotion, in its folder
        assert sheet_file(runtime.registry, aoi.id, emotion) == path
    assert sheet_file(runtime.registry, aoi.id, "开心") == now.folder / now.spec.avatar.sheet["happy"]

    info = avatar_info(runtime.registry, runtime.home, aoi.id)
    owner, name = aoi.id.split("/")
    assert info["kind"] == "image" and set(info["sheet"]) == {"neutral", "happy", "sad"}
    assert info["sheet"]["happy"] == f"/api/avatar/{owner}/{name}/sheet/happy?v=1.0.1"
    with pytest.raises(NotFound):
        sheet_file(runtime.registry, aoi.id, "angry")

    undone = chars.undo_character_edit(runtime, aoi.id)
    assert undone["version"] == "1.0.0"
    assert Character.installed(runtime.registry, aoi.id).spec.avatar is None


def test_an_edit_keeping_the_picture_keeps_the_sheet_and_a_new_picture_drops_it(runtime):
    aoi = make(runtime)
    drawing.set_avatar_sheet(runtime, aoi.id, {"neutral": RED, "happy": GREEN})
    image = Character.installed(runtime.registry, aoi.id).spec.avatar.image
    chars.update_character(runtime, aoi.id, {"scenario": "A shrine.", "avatar": {"image": image}})  # the editor
    kept = Character.installed(runtime.registry, aoi.id)
    assert kept.spec.scenario == "A shrine." and set(kept.spec.avatar.sheet) == {"neutral", "happy"}
    chars.update_character(runtime, aoi.id, {}, picture=(BLUE, "new.png"))
    assert Character.installed(runtime.registry, aoi.id).spec.avatar.sheet == {}


def test_a_catalog_characters_sheet_goes_on_a_local_copy(runtime):
    # its version lists a download (model.bin); the copy's new files are not among them
    install_resource(runtime.home, "acme/mei", {"persona": "You are Mei."}, kind="character", name="Mei")
    saved = drawing.set_avatar_sheet(runtime, "acme/mei", {"happy": GREEN})
    assert saved["forked_from"] == "acme/mei" and saved["id"] == "local/mei"
    assert Character.installed(runtime.registry, "acme/mei").spec.avatar is None  # the original is untouched
    assert Character.installed(runtime.registry, "local/mei").spec.avatar.image.startswith("sheet/")


@pytest.mark.parametrize(("pictures", "says"), [
    ({}, "at least one"),
    ({"happy": b"not a picture"}, "is not a PNG, JPEG, WebP or GIF"),
    ({"happy/sad": GREEN}, "is not an emotion name"),
    ({"happy": GREEN, "开心": RED}, "the same emotion"),
], ids=["none", "not-a-picture", "slash", "twice"])
def test_bad_sheet_pictures_are_refused_and_nothing_is_saved(runtime, pictures, says):
    aoi = make(runtime)
    with pytest.raises(UsageError, match=says):
        drawing.set_avatar_sheet(runtime, aoi.id, pictures)
    assert runtime.registry.versions(aoi.id) == ["1.0.0"]


def test_the_avatar_sheet_route_saves_the_pictures_and_serves_them_per_emotion(runtime):
    from zishu.web.app import create_app
    from zishu.web.avatar import avatar
    from zishu.web.styles import styles as styles_blueprint

    app = create_app(runtime, "s3cret")
    for blueprint in (avatar, styles_blueprint):
        if blueprint.name not in app.blueprints:
            app.register_blueprint(blueprint)
    client = app.test_client()
    client.environ_base.update(HTTP_X_ZISHU_TOKEN="s3cret")
    aoi = make(runtime)
    owner, name = aoi.id.split("/")
    answer = client.post(f"/api/characters/{owner}/{name}/avatar-sheet", content_type="multipart/form-data",
                         data={"neutral": (io.BytesIO(RED), "n.png"), "happy": (io.BytesIO(GREEN), "h.png")})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"character": aoi.id, "version": "1.0.1", "changed": True, "forked_from": None}
    info = client.get(f"/api/avatar/{owner}/{name}").get_json()
    assert client.get(info["sheet"]["happy"]).data == GREEN
    assert client.get(info["image_url"]).data == RED
    assert client.get(f"/api/avatar/{owner}/{name}/sheet/angry").status_code == 404
    empty = client.post(f"/api/characters/{owner}/{name}/avatar-sheet", json={})
    assert empty.status_code == 400 and "multipart" in empty.get_json()["error"]["message"]


def test_submit_expression_sheet_queues_one_image_job_per_emotion(runtime):
    import json

    from zishu.jobs import JobQueue
    from zishu.jobs.records import Job

    # the runtime's queue has the studio's real image job (checked against an installed model); on a
    # queue of its own a job that hands back its params stands in
    queue = JobQueue(runtime.home)
    queue.register("image", lambda ctx, **params: {"params": params})
    aoi = make(runtime, emotions={"happy": {}, "sad": {}})
    ids = drawing.submit_expression_sheet(queue, aoi)
    assert list(ids) == ["happy", "sad"]
    jobs = {emotion: Job.get_by_id(job_id) for emotion, job_id in ids.items()}
    assert {job.kind for job in jobs.values()} == {"image"}
    # the job keeps what was asked; the studio expands it (appearance, LoRA, seed) when it draws it
    assert json.loads(jobs["sad"].params) == drawing.sheet_asks(aoi)["sad"] == {
        "character": aoi.id, "prompt": "sad expression, portrait, upper body"}
    assert drawing.with_character(drawing.sheet_asks(aoi)["sad"], aoi) == drawing.expression_sheet_requests(aoi)["sad"]
