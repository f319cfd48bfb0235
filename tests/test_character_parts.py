"""Every part of a character is editable and used: models per role (LLM with a LoRA and its weight,
embedding, ASR, VAD), a picture uploaded as the avatar, the choices the editor offers (installed or
from the catalog), the default voice in Settings, the "no language model" message naming the
catalog's one LLM, and the Library moving your own character to the trash (catalog resources are
still deleted)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from conftest import AppProcess, make_manifest, publish_catalog, serve_file, write_manifest
from zishu import settings
from zishu.companion import characters as chars
from zishu.companion.brain import Character
from zishu.companion.model_choices import choices, model_to_install
from zishu.companion.session import choose_models, no_llm_message
from zishu.errors import UsageError


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def fields(**more) -> dict:
    return {"name": "Mio", "persona": "You are Mio.", **more}


def test_a_character_names_its_model_for_every_role_and_its_lora_weight(runtime) -> None:
    rid = chars.create_character(runtime, fields(
        llm={"model": "qwen/tiny-llm", "lora": "alice/cat-lora", "lora_weight": 0.5},
        models={"embedding": "baai/bge", "asr": "funasr/sense", "vad": "funasr/vad"},
        image_style={"prompt_prefix": "anime, ", "negative_prompt": "blurry", "lora": "alice/style"}))
    one = chars.get_character(runtime, rid)
    assert one["llm"] == {"model": "qwen/tiny-llm", "lora": "alice/cat-lora", "lora_weight": 0.5}
    assert one["models"] == {"embedding": "baai/bge", "asr": "funasr/sense", "vad": "funasr/vad"}
    assert one["image_style"]["prompt_prefix"] == "anime, "
    character = Character.installed(runtime.registry, rid)
    assert choose_models(runtime, character) == {"llm": "qwen/tiny-llm", "asr": "funasr/sense", "vad": "funasr/vad",
                                                 "embedding": "baai/bge"}
    with pytest.raises(UsageError, match=r"models\.asr: 'Not An Id' is not a catalog id"):
        chars.update_character(runtime, rid, {"models": {"asr": "Not An Id"}})


def test_a_picture_becomes_the_avatar_in_a_new_version(runtime) -> None:
    rid = chars.create_character(runtime, fields(avatar={"live2d": "live2d/haru"}))
    result = chars.update_character(runtime, rid, {"scenario": "A cafe."}, picture=(png(), "me.png"))
    assert result["changed"] and result["version"] == "1.0.1"
    one = chars.get_character(runtime, rid)
    assert one["avatar"]["live2d"] is None and one["avatar"]["image"].startswith("picture-")
    assert one["scenario"] == "A cafe."
    path = chars.avatar_file(runtime, rid)
    assert path is not None and path.read_bytes() == png()
    chars.undo_character_edit(runtime, rid)  # undo goes back to the Live2D model
    assert chars.get_character(runtime, rid)["avatar"]["live2d"] == "live2d/haru"
    with pytest.raises(UsageError, match="is not a PNG, JPEG, WebP or GIF picture"):
        chars.update_character(runtime, rid, {}, picture=(b"<svg onload=alert(1)>", "x.svg"))
    with pytest.raises(UsageError, match="the file is empty"):
        chars.update_character(runtime, rid, {}, picture=(b"", "x.png"))


@pytest.fixture
def one_llm_catalog(tmp_path: Path, registry: Path, file_server, monkeypatch) -> str:
    llm = make_manifest("qwen/only-llm", kind="model", name="Only LLM")
    llm["versions"][0]["files"] = [serve_file(file_server, "only.gguf", 1000)]
    asr = make_manifest("funasr/sense", kind="model", name="Sense")
    asr["spec"] = {"format": "funasr", "role": "asr"}
    asr["versions"][0]["files"] = [serve_file(file_server, "sense.pt", 1000)]
    haru = make_manifest("live2d/haru", kind="live2d", name="Haru")
    haru["versions"][0]["files"] = [serve_file(file_server, "model.model3.json", 100)]
    for m in (llm, asr, haru):
        write_manifest(registry, m)
    url = publish_catalog(registry, tmp_path / "catalog")
    monkeypatch.setenv("ZISHU_CATALOG", url)
    return url


def test_the_editor_offers_catalog_models_by_role_and_the_no_llm_message_names_the_only_one(
        runtime, one_llm_catalog) -> None:
    offered = choices(runtime)
    assert offered["llm"] == [{"id": "qwen/only-llm", "name": "Only LLM", "installed": False}]
    assert [c["id"] for c in offered["asr"]] == ["funasr/sense"]
    assert [c["id"] for c in offered["live2d"]] == ["live2d/haru"]
    assert offered["embedding"] == []
    assert model_to_install(runtime, "llm") == "qwen/only-llm"
    message = no_llm_message(runtime, "Mio")
    assert "zishu install qwen/only-llm" in message and "<owner>" not in message


def test_the_default_voice_setting_is_checked(runtime) -> None:
    assert settings.change({"companion_voice": {"engine": "espeak-ng", "voice": "espeak-ng/en-us"}}).companion_voice \
        == {"engine": "espeak-ng", "voice": "espeak-ng/en-us"}
    with pytest.raises(UsageError, match="needs the engine"):
        settings.change({"companion_voice": {"voice": "espeak-ng/en-us"}})
    with pytest.raises(UsageError, match="not a catalog id"):
        settings.change({"companion_voice": {"engine": "espeak-ng", "voice": "Bad Id"}})
    assert settings.change({"companion_voice": {}}).companion_voice == {}


def test_library_uninstall_of_your_own_character_goes_to_the_trash(app_env) -> None:
    with AppProcess(app_env[0]) as app:
        app.api("POST", "/api/characters", json=fields())
        gone = app.api("DELETE", "/api/library/local/mio").json()
        assert gone == {"id": "local/mio", "removed": ["1.0.0"], "trashed": True}
        assert app.api("GET", "/api/characters/local/mio").status_code == 404
        back = app.api("POST", "/api/characters/local/mio/restore")
        assert back.status_code == 200 and back.json()["character"]["name"] == "Mio"

        job = app.api("POST", "/api/installs", json={"request": "zishu/base-model"}).json()["job"]
        assert app.wait_job(job["id"])["status"] == "SUCCESS"
        removed = app.api("DELETE", "/api/library/zishu/base-model").json()
        assert removed["trashed"] is False and removed["removed"] == ["1.0.0"]
        assert app.api("POST", "/api/characters/zishu/base-model/restore").status_code == 400
