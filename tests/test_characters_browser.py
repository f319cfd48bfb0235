"""The Characters panel in headless Chromium against a real ``zishu serve``: make a character in the
form and find it in the list, import a card file (and be told why a bad one is refused), edit and
undo, delete and undo, and edit a catalog character into a copy of one's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import AppProcess, app_origin, watched_page
from zishu.catalog.cards import card_png_bytes

pytestmark = pytest.mark.browser

WAIT = 30_000  # ms

CARD = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {"name": "Seraphina", "description": "{{char}} guards the forest.", "first_mes": "Easy now, {{user}}.",
             "character_book": {"entries": [{"keys": ["forest"], "content": "An old forest."}]}},
}


@pytest.fixture
def app(app_env):
    with AppProcess(app_env[0]) as app:
        yield app


@pytest.fixture
def ui(browser, app):
    """A page logged in to ``app``, on Characters; fails on any console error."""
    from playwright.sync_api import expect

    with watched_page(browser, app.login_url) as page:
        page.goto(app_origin(page) + "/characters")
        expect(page.get_by_test_id("page-title")).to_have_text("Characters")
        yield page


def character(app, rid: str) -> dict:
    return app.api("GET", f"/api/characters/{rid}").json()["character"]


def test_make_a_character_in_the_form_and_find_it_in_the_list(ui, app):
    from playwright.sync_api import expect

    expect(ui.get_by_test_id("characters-empty")).to_be_visible()
    expect(ui.get_by_test_id("nav-characters")).to_have_class(re.compile(r"\bactive\b"))
    ui.get_by_test_id("new-character").click()
    expect(ui.get_by_test_id("page-title")).to_have_text("New character")

    ui.get_by_test_id("save-character").click()  # nothing filled in: the form says what is missing
    expect(ui.get_by_test_id("toast").last).to_have_text(re.compile("Give the character a name"))

    ui.get_by_test_id("field-name").fill("Mio")
    ui.get_by_test_id("field-persona").fill("You are {{char}}, a cheerful cat who loves fish.")
    ui.get_by_test_id("greeting-text").first.fill("Nya! Hello, {{user}}.")
    ui.get_by_test_id("add-lore").click()
    entry = ui.get_by_test_id("lore-entry").last
    entry.get_by_test_id("lore-keys").fill("fish, tuna")
    entry.get_by_test_id("lore-content").fill("Mio's favourite is tuna.")
    entry.get_by_test_id("lore-priority").fill("5")
    ui.get_by_test_id("add-emotion").click()
    ui.get_by_test_id("emotion-tag").last.fill("开心")
    ui.get_by_test_id("emotion-expression").last.fill("smile")
    ui.get_by_test_id("field-voice-engine").fill("espeak-ng")
    ui.get_by_test_id("save-character").click()

    expect(ui).to_have_url(re.compile(r"/characters$"))
    card = ui.locator('[data-testid="character-card"][data-id="local/mio"]')
    expect(card.get_by_test_id("character-name")).to_have_text("Mio")
    expect(card.get_by_test_id("character-greeting")).to_have_text("Nya! Hello, you.")
    expect(card.get_by_test_id("talk")).to_have_attribute("href", "/companion?character=local%2Fmio")
    expect(ui.get_by_test_id("toast").last).to_have_text(re.compile("Created Mio"))
    made = character(app, "local/mio")
    assert made["lorebook"][0]["keys"] == ["fish", "tuna"] and made["lorebook"][0]["priority"] == 5
    assert made["emotions"] == {"开心": {"expression": "smile", "motion": None}}
    assert made["voice"] == {"engine": "espeak-ng", "voice": None, "reference_audio": {}}


def test_import_a_card_file(ui, app, tmp_path: Path):
    from playwright.sync_api import expect

    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes")
    ui.get_by_test_id("import-card").set_input_files(str(bad))
    expect(ui.get_by_test_id("toast").last).to_have_text(re.compile(r"notes\.txt: not a character card"))

    card_file = tmp_path / "seraphina.png"
    card_file.write_bytes(card_png_bytes(CARD))
    ui.get_by_test_id("import-card").set_input_files(str(card_file))
    card = ui.locator('[data-testid="character-card"][data-id="local/seraphina"]')
    expect(card.get_by_test_id("character-greeting")).to_have_text("Easy now, you.")
    expect(card.get_by_test_id("character-origin")).to_have_text("Imported from seraphina.png")
    expect(ui.get_by_test_id("toast").last).to_have_text(re.compile(r"Imported Seraphina from seraphina\.png"))
    avatar = card.locator("img.character-avatar")
    expect(avatar).to_have_js_property("complete", True)
    assert avatar.evaluate("img => img.naturalWidth") == 400  # the card's own picture
    assert character(app, "local/seraphina")["lorebook"][0]["content"] == "An old forest."


def test_edit_then_undo(ui, app):
    from playwright.sync_api import expect

    assert app.api("POST", "/api/characters", json={"name": "Mio", "persona": "You are a cat."}).status_code == 201
    ui.reload()
    ui.locator('[data-testid="character-card"][data-id="local/mio"]').get_by_test_id("edit").click()
    expect(ui.get_by_test_id("page-title")).to_have_text("Edit Mio")
    expect(ui.get_by_test_id("field-persona")).to_have_value("You are a cat.")
    expect(ui.get_by_test_id("fork-note")).to_have_count(0)

    ui.get_by_test_id("field-persona").fill("You are a sleepy cat.")
    ui.get_by_test_id("field-scenario").fill("A sunny window.")
    ui.get_by_test_id("save-character").click()
    expect(ui.get_by_test_id("toast").last).to_contain_text("Saved Mio (version 1.0.1).")
    expect(ui.get_by_test_id("character-meta")).to_contain_text("version 1.0.1")
    assert character(app, "local/mio")["persona"] == "You are a sleepy cat."

    ui.get_by_test_id("toast").last.get_by_test_id("undo").click()
    expect(ui.get_by_test_id("toast").last).to_contain_text("Back to version 1.0.0.")
    expect(ui.get_by_test_id("field-persona")).to_have_value("You are a cat.")
    expect(ui.get_by_test_id("field-scenario")).to_have_value("")
    now = character(app, "local/mio")
    assert now["versions"] == ["1.0.0"] and now["persona"] == "You are a cat."

    ui.get_by_test_id("save-character").click()  # saving what is there changes nothing
    expect(ui.get_by_test_id("toast").last).to_have_text(re.compile("Nothing changed"))
    assert character(app, "local/mio")["versions"] == ["1.0.0"]


def test_delete_then_undo(ui, app):
    from playwright.sync_api import expect

    for name in ("Mio", "Kuro"):
        app.api("POST", "/api/characters", json={"name": name, "persona": f"You are {name}."})
    ui.reload()
    cards = ui.get_by_test_id("character-card")
    expect(cards).to_have_count(2)
    mio = ui.locator('[data-testid="character-card"][data-id="local/mio"]')
    mio.get_by_test_id("delete").click()
    expect(ui.get_by_test_id("confirm-dialog")).to_contain_text("Delete Mio?")
    ui.get_by_test_id("confirm-cancel").click()
    expect(cards).to_have_count(2)

    mio.get_by_test_id("delete").click()
    ui.get_by_test_id("confirm-ok").click()
    expect(cards).to_have_count(1)
    expect(mio).to_have_count(0)
    assert app.api("GET", "/api/characters/local/mio").status_code == 404

    ui.get_by_test_id("toast").last.get_by_test_id("undo").click()
    expect(cards).to_have_count(2)
    expect(mio.get_by_test_id("character-name")).to_have_text("Mio")
    assert character(app, "local/mio")["persona"] == "You are Mio."


def test_editing_a_catalog_character_saves_a_copy_and_undo_returns_to_the_original(ui, app):
    from playwright.sync_api import expect

    job = app.api("POST", "/api/installs", json={"request": "zishu/hero"}).json()["job"]
    assert app.wait_job(job["id"])["status"] == "SUCCESS"
    ui.reload()
    hero = ui.locator('[data-testid="character-card"][data-id="zishu/hero"]')
    expect(hero.get_by_test_id("character-origin")).to_have_text("From the catalog")
    expect(hero.get_by_test_id("delete")).to_have_count(0)  # uninstalled in the Library, not here
    hero.get_by_test_id("edit").click()
    expect(ui.get_by_test_id("fork-note")).to_be_visible()

    ui.get_by_test_id("field-scenario").fill("A quiet tavern.")
    ui.get_by_test_id("save-character").click()
    expect(ui.get_by_test_id("toast").last).to_contain_text("Saved Hero as your own copy (local/hero).")
    expect(ui).to_have_url(re.compile(r"/characters/local/hero/edit$"))
    expect(ui.get_by_test_id("fork-note")).to_be_hidden()
    assert character(app, "local/hero")["derived_from"] == "zishu/hero@1.0.0"
    assert character(app, "zishu/hero")["scenario"] == ""

    ui.get_by_test_id("toast").last.get_by_test_id("undo").click()
    expect(ui).to_have_url(re.compile(r"/characters/zishu/hero/edit$"))
    expect(ui.get_by_test_id("fork-note")).to_be_visible()
    expect(ui.get_by_test_id("field-scenario")).to_have_value("")
    assert app.api("GET", "/api/characters/local/hero").status_code == 404


def test_the_editor_gives_a_live2d_model_then_a_picture_and_the_library_undoes_an_uninstall(ui, app, tmp_path):
    from playwright.sync_api import expect

    app.api("POST", "/api/characters", json={"name": "Mio", "persona": "You are Mio."})
    ui.goto(app_origin(ui) + "/characters/local/mio/edit")
    for part in ("field-model-llm", "field-model-embedding", "field-model-asr", "field-model-vad",
                 "field-llm-lora", "field-llm-lora-weight", "field-style-prefix", "field-style-negative",
                 "field-style-lora", "field-voice-engine", "emotions"):
        expect(ui.get_by_test_id(part)).to_be_attached()
    llm = ui.get_by_test_id("field-model-llm")
    expect(llm.locator('option[value="zishu/base-model"]')).to_have_count(1)  # from the catalog
    llm.select_option("zishu/base-model")
    expect(ui.get_by_test_id("install-llm")).to_be_visible()  # not installed: Install is offered
    ui.get_by_test_id("field-style-prefix").fill("anime, ")
    ui.get_by_test_id("avatar-image").check()
    picture = tmp_path / "me.png"
    from PIL import Image

    Image.new("RGB", (16, 16), (200, 40, 90)).save(picture)
    ui.get_by_test_id("field-picture").set_input_files(str(picture))
    ui.get_by_test_id("save-character").click()
    expect(ui.get_by_test_id("toast").last).to_have_text(re.compile("Saved Mio"))
    saved = character(app, "local/mio")
    assert saved["llm"]["model"] == "zishu/base-model" and saved["image_style"]["prompt_prefix"] == "anime, "
    assert saved["avatar"]["image"].startswith("picture-")

    ui.goto(app_origin(ui) + "/library")
    mio = ui.locator('[data-testid="library-item"][data-id="local/mio"]')
    mio.get_by_test_id("uninstall").first.click()
    expect(ui.get_by_test_id("confirm-dialog")).to_contain_text("Characters trash")
    expect(ui.get_by_test_id("confirm-dialog")).not_to_contain_text("Discover")
    ui.get_by_test_id("confirm-ok").click()
    expect(mio).to_have_count(0)
    ui.get_by_test_id("toast").last.get_by_test_id("undo").click()
    expect(mio).to_have_count(1)
    assert character(app, "local/mio")["avatar"]["image"] == saved["avatar"]["image"]


def test_import_a_world_info_lorebook_in_the_editor_then_undo(ui, app, tmp_path: Path):
    from playwright.sync_api import expect

    world = {"entries": {  # written by hand in the shape SillyTavern saves a world
        "0": {"uid": 0, "key": ["Eldoria"], "keysecondary": [], "comment": "The forest", "selective": True,
              "content": "Eldoria is an ancient forest.", "constant": False, "order": 100, "disable": False},
        "1": {"uid": 1, "key": ["wolves", "pack"], "keysecondary": [], "comment": "Wolves", "selective": True,
              "content": "Wolves hunt at night.", "constant": False, "order": 90, "disable": False}}}
    (tmp_path / "Eldoria.json").write_text(json.dumps(world), encoding="utf-8")
    (tmp_path / "notes.json").write_text("not json", encoding="utf-8")
    assert app.api("POST", "/api/characters", json={"name": "Mio", "persona": "You are a cat."}).status_code == 201
    ui.goto(app_origin(ui) + "/characters/local/mio/edit")
    expect(ui.get_by_test_id("page-title")).to_have_text("Edit Mio")
    expect(ui.get_by_test_id("lore-entry")).to_have_count(0)

    ui.get_by_test_id("lorebook-file").set_input_files(str(tmp_path / "Eldoria.json"))
    expect(ui.get_by_test_id("toast").last).to_contain_text("Imported 2 lorebook entries from Eldoria.json")
    expect(ui.get_by_test_id("lore-entry")).to_have_count(2)
    expect(ui.get_by_test_id("character-meta")).to_contain_text("version 1.0.1")
    assert [e["keys"] for e in character(app, "local/mio")["lorebook"]] == [["Eldoria"], ["wolves", "pack"]]
    ui.screenshot(path=str(tmp_path / "lorebook.png"), full_page=True)

    ui.get_by_test_id("toast").last.get_by_test_id("undo").click()
    expect(ui.get_by_test_id("toast").last).to_contain_text("Back to version 1.0.0.")
    expect(ui.get_by_test_id("lore-entry")).to_have_count(0)

    ui.get_by_test_id("lorebook-file").set_input_files(str(tmp_path / "notes.json"))
    expect(ui.get_by_test_id("toast").last).to_contain_text("notes.json: is not a JSON file")
    assert character(app, "local/mio")["versions"] == ["1.0.0"]
