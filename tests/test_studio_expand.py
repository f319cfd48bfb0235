"""Styles and characters as the studio's expanders (issue 15, items 3, 4 and 6): a style fills only the
fields the user left unset and names the LoRA to install; a character brings its appearance, LoRA,
style and stable seed; "reuse these settings" and a queued job keep what the user asked, so nothing
is expanded twice; safe mode is forced on for a character marked for all ages, for the prompt filter
and for the picture checks. Drawn with the real diffusers engine on a tiny random pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import install_resource
from tiny_diffusers import write_tiny_lora, write_tiny_sd
from zishu import plugins, settings
from zishu.companion.characters import create_character
from zishu.errors import NotFound, ResourceNotAvailable, UsageError
from zishu.hookspecs import hookimpl
from zishu.studio.characters import character_seed, draw_request
from zishu.studio.styles import save_style

SMALL = {"width": 64, "height": 64, "steps": 1, "guidance": 5.0}
INK = {"title": "Ink", "prompt": "ink drawing of {prompt}, monochrome", "negative": "colour",
       "width": 64, "height": 64, "steps": 2, "guidance": 3.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("expand-models")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "lora": write_tiny_lora(folder / "lora", sd).parent}


@pytest.fixture
def studio(runtime, tiny):
    install_resource(runtime.home, "acme/tiny-sd", {"format": "diffusers", "role": "image", "base_model": "sd15"},
                     files={p.name: p for p in tiny["sd"].iterdir()})
    install_resource(runtime.home, "acme/aoi-lora", {"target": "image", "base_model": "sd15"}, kind="lora",
                     files={"lora": tiny["lora"]})
    save_style(runtime.home, "ink", INK)
    return runtime.studio


def test_a_style_fills_only_what_the_user_left_unset(studio):
    drawn = studio.prepare({"prompt": "a cat", "style": "ink", "steps": 1, "width": 512}).request
    assert drawn.prompt == "ink drawing of a cat, monochrome" and drawn.negative_prompt == "colour"
    assert (drawn.width, drawn.height, drawn.steps, drawn.guidance) == (512, 64, 1, 3.0)  # the user's 512 and 1 win
    # a value equal to the default is still the user's choice
    assert studio.prepare({"prompt": "a cat", "style": "ink", "guidance": 7.0}).request.guidance == 7.0
    with pytest.raises(NotFound, match=r"^style: there is no style 'oil'; the styles are: anime, .*ink"):
        studio.prepare({"prompt": "a cat", "style": "oil"})
    with pytest.raises(UsageError, match=r"^style: 'Ink!' is not a style name"):
        studio.prepare({"prompt": "a cat", "style": "Ink!"})


def test_a_style_whose_lora_is_missing_names_the_catalog_id_to_install(studio, runtime):
    from zishu.web.app import create_app

    save_style(runtime.home, "gouache", {**INK, "loras": [{"id": "acme/aoi-lora", "weight": 0.5},
                                                          {"id": "acme/gouache-lora", "weight": 0.8}]})
    with pytest.raises(ResourceNotAvailable, match=r"^style: gouache draws with acme/gouache-lora, which is not "
                                                   r"installed; install with: zishu install acme/gouache-lora$") as e:
        studio.prepare({"prompt": "a cat", "style": "gouache"})
    assert e.value.install == "acme/gouache-lora"
    client = create_app(runtime, "s3cret").test_client()
    answer = client.post("/api/studio/images", json={"prompt": "a cat", "style": "gouache"},
                         headers={"X-Zishu-Token": "s3cret"})
    assert answer.status_code == 404 and answer.json["error"]["install"] == "acme/gouache-lora"


def test_a_character_brings_its_appearance_lora_style_and_seed(studio, runtime):
    rid = create_character(runtime, {"name": "Aoi", "persona": "A fox spirit.", "image_style": {
        "prompt_prefix": "fox girl, silver hair", "negative_prompt": "extra tails", "lora": "acme/aoi-lora",
        "lora_weight": 0.6, "style": "ink"}})
    drawn = studio.prepare({"character": rid, "prompt": "reading", "negative_prompt": "rain"}).request
    assert drawn.prompt == "ink drawing of fox girl, silver hair, reading, monochrome"
    assert drawn.negative_prompt == "rain, extra tails, colour"
    assert [(x.id, x.weight) for x in drawn.loras] == [("acme/aoi-lora", 0.6)]
    assert drawn.seed == character_seed(rid) and drawn.style == "ink" and drawn.character == rid
    # no prompt: the appearance is the prompt; the user's seed and style win over the character's
    own = studio.prepare({"character": rid, "seed": 3, "style": "anime"}).request
    assert own.seed == 3 and own.style == "anime" and "fox girl, silver hair" in own.prompt
    assert studio.prepare({"character": rid, "seed": -1}).request.seed is None  # asked for a random one
    # fields draw_request already built (the storyboard's shots) are not given the appearance twice
    again = studio.prepare({**draw_request(studio_character(runtime, rid), prompt="reading"), "style": "ink"})
    assert again.request.prompt == drawn.prompt
    with pytest.raises(ResourceNotAvailable, match=r"^character: "):
        studio.prepare({"character": "local/nobody", "prompt": "a cat"})
    with pytest.raises(UsageError, match=r"^character: acme/tiny-sd is a model, not a character"):
        studio.prepare({"character": "acme/tiny-sd", "prompt": "a cat"})


def studio_character(runtime, rid):
    from zishu.companion.brain import Character

    return Character.installed(runtime.registry, rid)


def test_reuse_and_the_queued_job_keep_what_was_asked_so_nothing_is_expanded_twice(studio, runtime):
    from zishu.studio.jobs import check

    rid = create_character(runtime, {"name": "Aoi", "persona": "A fox spirit.",
                                     "image_style": {"prompt_prefix": "fox girl"}})
    asked = {"character": rid, "prompt": "a cat", "style": "ink", "steps": 1}
    queued = check(asked, runtime.jobs.service)
    assert queued == {**asked, "model": "acme/tiny-sd@1.0.0"}  # the user's fields, expanded when drawn
    first = studio.generate(queued)
    [row] = first.images
    assert row.prompt == "ink drawing of fox girl, a cat, monochrome" and row.style == "ink" and row.character == rid
    assert "ink drawing of fox girl, a cat, monochrome\nNegative prompt: colour" in row.parameters
    reused = studio.gallery.reuse(row.id)
    assert reused == {**queued, "seed": character_seed(rid), "batch": 1}
    assert studio.prepare(reused).request.prompt == row.prompt  # expanded once, not "ink drawing of ink drawing"
    again = studio.generate(reused)
    assert again.cached and [r.id for r in again.images] == [row.id]  # the very same request
    # a prepared request handed back is not expanded again either
    prepared = studio.prepare(asked)
    assert studio.prepare(prepared.request).request.prompt == prepared.request.prompt


def test_safe_mode_is_forced_on_for_an_all_ages_character(studio, runtime):
    settings.change({"studio_safe_mode": False})
    kid = create_character(runtime, {"name": "Momo", "persona": "A cheerful pup.", "audience": "all-ages"})
    grown = create_character(runtime, {"name": "Rei", "persona": "A bartender.", "audience": "adult"})
    assert studio.prepare({"prompt": "a nude figure", **SMALL}).request  # safe mode off: allowed
    assert studio.prepare({"prompt": "a nude figure", "character": grown, **SMALL}).request
    with pytest.raises(UsageError, match=r"^prompt: safe mode: the prompt contains nude"):
        studio.prepare({"prompt": "a nude figure", "character": kid, **SMALL})
    with pytest.raises(UsageError, match=r"^prompt: safe mode: the prompt contains nude"):
        runtime.jobs.submit("image", {"prompt": "nude", "character": kid, **SMALL})

    class BlockInSafeMode:
        @hookimpl
        def check_image(self, image, context):
            return {"blocked": context["safe_mode"], "reason": "safe-mode classifier"}

    plugins.pm.register(BlockInSafeMode(), name="block-in-safe-mode")
    try:
        [free] = studio.generate({"prompt": "a cat", "seed": 1, **SMALL}).images
        [kept] = studio.generate({"prompt": "a cat", "character": kid, **SMALL}).images
    finally:
        plugins.pm.unregister(name="block-in-safe-mode")
    assert not free.blocked
    assert kept.blocked and kept.blocked_reason == "safe-mode classifier"
