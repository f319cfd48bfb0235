"""Typed settings (zishu.settings): defaults, every rejection with the message the API shows, a
refused change writes nothing, values edited by hand read as defaults, plugin switches; and the
Settings API refusing the same values over a real local server with 400 USAGE."""

from __future__ import annotations

import pytest
import requests

from zishu import settings
from zishu.db import get_setting, open_database, set_setting
from zishu.errors import NotFound, UsageError


@pytest.fixture
def db(tmp_path):
    database = open_database(tmp_path / "zishu.db")
    yield database
    database.close()


def test_nothing_stored_reads_as_the_defaults(db):
    assert settings.load() == settings.Settings()
    assert settings.load().model_dump() == {"plugins_disabled": [], "companion_models": {}, "companion_devices": {},
                                            "companion_voice": {}, "catalog_url": "", "companion_turn_seconds": 120,
                                            "studio_safe_mode": True, "studio_image_check": {},
                                            "local_api_enabled": False, "local_api_port": settings.LOCAL_API_PORT,
                                            "local_api_origins": [], "studio_model": "",
                                            "storyboard_picture_side": 512}



def test_the_studio_model_is_a_trimmed_id_or_path(db):
    assert settings.change({"studio_model": " alice/tiny-sd "}).studio_model == "alice/tiny-sd"
    with pytest.raises(UsageError, match="studio_model must be a catalog id"):
        settings.change({"studio_model": 3})


def test_a_change_is_validated_stored_under_the_old_keys_and_read_back(db):
    changed = settings.change({"catalog_url": "  https://example.org/catalog/ ",
                               "companion_models": {"embedding": " acme/embed ", "asr": " "}})
    assert changed.catalog_url == "https://example.org/catalog/"
    assert changed.companion_models == {"embedding": "acme/embed"}  # blank roles are dropped
    assert get_setting("catalog_url") == "https://example.org/catalog/"
    assert get_setting("companion.models") == {"embedding": "acme/embed"}
    assert settings.load() == changed
    assert settings.change({"catalog_url": ""}).catalog_url == ""  # empty: the bundled catalog again
    assert settings.change({"catalog_url": "file:///srv/catalog"}).catalog_url == "file:///srv/catalog"


REJECTED = [  # field, value, what the message says
    ("storyboard_picture_side", 500, "storyboard_picture_side must be a whole number of pixels from 64 to 2048, a "
                                     "multiple of 8"),
    ("storyboard_picture_side", 4096, "storyboard_picture_side must be a whole number of pixels from 64 to 2048"),
    ("storyboard_picture_side", "512", "storyboard_picture_side must be a whole number of pixels"),
    ("storyboard_picture_side", True, "storyboard_picture_side must be a whole number of pixels"),
    ("catalog_url", "ftp://example.org/", "catalog_url must be an http(s):// or file:// URL"),
    ("catalog_url", "example.org", "catalog_url must be an http(s):// or file:// URL"),
    ("catalog_url", "https://exa mple.org", "catalog_url must be an http(s):// or file:// URL"),
    ("catalog_url", 3, "catalog_url must be an http(s):// or file:// URL"),
    ("companion_models", {"tts": "acme/x"}, "companion_models must map roles (llm, asr, vad, embedding)"),
    ("companion_models", ["acme/x"], "companion_models must map roles"),
    ("companion_models", {"llm": 3}, "companion_models must map roles"),
    ("plugins_disabled", "llama", "plugins_disabled must be a list of plugin names"),
    ("plugins_disabled", ["llama", 3], "plugins_disabled must be a list of plugin names"),
    ("plugins_disabled", [""], "plugins_disabled must be a list of plugin names"),
    ("companion_turn_seconds", 0, "companion_turn_seconds must be a whole number of seconds from 5 to 3600"),
    ("companion_turn_seconds", 1e9, "companion_turn_seconds must be a whole number of seconds"),
    ("companion_turn_seconds", True, "companion_turn_seconds must be a whole number of seconds"),
    ("studio_safe_mode", "off", "studio_safe_mode must be true or false"),
    ("studio_safe_mode", 0, "studio_safe_mode must be true or false"),
    ("studio_image_check", {"path": "x.onnx"}, "studio_image_check must be {\"model\""),
    ("studio_image_check", {"model": 3}, "model must be text"),
    ("studio_image_check", {"threshold": 1}, "threshold must be a number between 0 and 1"),
    ("studio_image_check", {"threshold": True}, "threshold must be a number between 0 and 1"),
]


@pytest.mark.parametrize(("field", "value", "message"), REJECTED)
def test_each_bad_value_is_refused_naming_the_setting(db, field, value, message):
    with pytest.raises(UsageError) as refused:
        settings.change({field: value})
    assert message in str(refused.value) and not str(refused.value).startswith("Value error")
    assert get_setting(settings.KEYS[field]) is None  # nothing was stored


def test_each_role_has_a_device_setting_that_takes_auto_cpu_or_cuda(db):
    changed = settings.change({"companion_devices": {"llm": "cpu", "embedding": " cuda:1 ", "asr": "auto"}})
    assert changed.companion_devices == {"llm": "cpu", "embedding": "cuda:1"}  # auto is the default: not stored
    assert get_setting("companion.devices") == {"llm": "cpu", "embedding": "cuda:1"}
    assert settings.load().companion_devices == {"llm": "cpu", "embedding": "cuda:1"}
    for bad in ({"llm": "tpu"}, {"tts": "cpu"}, ["cpu"], {"llm": "cuda:x"}):
        with pytest.raises(UsageError, match=r'companion_devices must map roles \(llm, asr, vad, embedding\) to'):
            settings.change({"companion_devices": bad})


def test_unknown_settings_are_refused_with_what_this_caller_may_change(db):
    with pytest.raises(UsageError, match=r"unknown settings: colour, theme \(known: catalog_url, plugins_disabled,"):
        settings.change({"theme": "dark", "colour": "red"})
    with pytest.raises(UsageError,
                       match=r"unknown settings: plugins_disabled \(known: catalog_url, companion_models\)"):
        settings.change({"plugins_disabled": ["tts"]}, allowed=("catalog_url", "companion_models"))


def test_a_change_with_one_bad_value_stores_none_of_them(db):
    with pytest.raises(UsageError, match="catalog_url"):
        settings.change({"companion_models": {"llm": "acme/talker"}, "catalog_url": "gopher://x"})
    assert get_setting("companion.models") is None and settings.load().companion_models == {}


def test_values_edited_by_hand_read_as_the_defaults(db):
    set_setting("catalog_url", ["not", "a", "url"])
    set_setting("companion.models", {"tts": "acme/voice"})
    set_setting("plugins.disabled", ["tts"])
    loaded = settings.load()
    assert (loaded.catalog_url, loaded.companion_models, loaded.plugins_disabled) == ("", {}, ["tts"])


def test_plugins_are_switched_by_name_and_zishu_s_own_cannot_be(db):
    assert settings.set_plugin_disabled("tts", True) == ["tts"]
    assert settings.set_plugin_disabled("tts", True) == ["tts"]  # twice is once
    assert get_setting("plugins.disabled") == ["tts"]
    assert settings.set_plugin_disabled("tts", False) == []
    with pytest.raises(NotFound, match="no plugin 'nope'"):
        settings.set_plugin_disabled("nope", True)
    with pytest.raises(UsageError, match="is part of Zishu and cannot be disabled"):
        settings.set_plugin_disabled("zishu.web.panels", True)


def test_the_emotion_map_of_a_character_is_kept_under_its_own_key(db):
    assert settings.stored_emotion_map("acme/mei") == {}
    settings.store_emotion_map("acme/mei", {"joy": {"expression": "grin", "motion": None}})
    assert get_setting("avatar.emotions.acme/mei") == {"joy": {"expression": "grin", "motion": None}}
    set_setting("avatar.emotions.acme/mei", ["junk"])
    assert settings.stored_emotion_map("acme/mei") == {}


@pytest.fixture
def server(runtime):
    from zishu.web.server import AppServer

    srv = AppServer(runtime, threads=4)
    srv.start()
    yield srv
    srv.stop()


def put_settings(srv, body) -> requests.Response:
    return requests.put(srv.url.rstrip("/") + "/api/settings", json=body, timeout=30,
                        headers={"X-Zishu-Token": srv.secret})


def test_the_settings_api_refuses_each_bad_value_with_400_usage(server):
    for field, value, message in REJECTED:
        if field == "plugins_disabled":
            continue  # not changed through this route: plugins have their own
        refused = put_settings(server, {field: value})
        assert refused.status_code == 400, (field, value)
        assert refused.json()["error"]["code"] == "USAGE" and message in refused.json()["error"]["message"]
    unknown = put_settings(server, {"plugins_disabled": ["tts"]})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == (
        "unknown settings: plugins_disabled (known: catalog_url, companion_models, companion_devices, companion_voice, "
        "companion_turn_seconds, studio_safe_mode, studio_image_check, local_api_enabled, local_api_port, "
        "local_api_origins, storyboard_picture_side)"
    )
    ok = put_settings(server, {"catalog_url": "https://example.org/c/"})
    assert ok.status_code == 200 and ok.json()["catalog_url"] == "https://example.org/c/"
