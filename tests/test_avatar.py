"""The avatar: /api/avatar for image, placeholder and Live2D characters, the Cubism Core route and
`zishu live2d core`, model files (no path escape), the emotion calibration (validated, stored,
overlaid on the character's map, undone), and in Chromium the calibrator with a static avatar.
With ZISHU_TEST_LIVE2D_MODEL and ZISHU_TEST_LIVE2D_CORE set, a real Live2D model is rendered."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import requests

from conftest import CHROMIUM_ARGS, make_manifest, watched_page
from zishu.catalog import RESOURCE
from zishu.companion.brain import Character
from zishu.companion.cubism_core import check_live2d, read_core_version
from zishu.companion.expressions import canonical_emotions, emotion_map, save_emotion_map, setting_key, validate_mapping
from zishu.companion.live2d_core import CORE_NAME, core_path, install_core
from zishu.companion.stream_text import EmotionTags
from zishu.db import get_setting
from zishu.errors import UsageError

FAKE_CORE = b"/* Live2D Cubism Core (a stand-in for tests) */\nvar Live2DCubismCore = {};\n"
MODEL3 = {"Version": 3, "FileReferences": {
    "Moc": "m.moc3", "Textures": [],
    "Expressions": [{"Name": "Smile", "File": "e/smile.exp3.json"}, {"Name": "Angry", "File": "e/angry.exp3.json"}],
    "Motions": {"Idle": [{"File": "idle.motion3.json"}], "TapBody": [{"File": "tap.motion3.json"}]}}}


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 80, 120)).save(out, "PNG")
    return out.getvalue()


def install(registry, data: dict, files: dict[str, bytes]) -> Path:
    """Put a resource in place as the installer leaves it: its files, manifest.json, the registry record."""
    data["versions"][0]["files"] = [
        {"name": name, "url": f"https://example.com/{name}", "sha256": hashlib.sha256(body).hexdigest(),
         "size": len(body)} for name, body in files.items()]
    resource = RESOURCE.validate_python(data)
    version = resource.versions[0].version
    folder = registry.version_dir(resource.id, version)
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    (folder / "manifest.json").write_bytes(RESOURCE.dump_json(resource))
    registry.record(resource.id, version, kind=resource.kind,
                    files={f.name: {"sha256": f.sha256, "size": f.size} for f in resource.versions[0].files})
    return folder


def character(rid: str, name: str, **spec) -> dict:
    return make_manifest(rid, kind="character", name=name, spec={"persona": f"You are {name}.", **spec})


@pytest.fixture
def server(runtime):
    """The app on a real local server (cheroot), in this process so the tests can read its settings."""
    from zishu.web.avatar import avatar
    from zishu.web.server import AppServer

    srv = AppServer(runtime, threads=8)
    if "avatar" not in srv.app.blueprints:  # until panels.py registers it
        srv.app.register_blueprint(avatar)
    srv.start()
    yield srv
    srv.stop()


def call(srv, method: str, path: str, **kwargs) -> requests.Response:
    url = srv.url.rstrip("/") + path
    headers = {"X-Zishu-Token": srv.secret, **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=30, **kwargs)


def raw_get(srv, path: str) -> int:
    """GET ``path`` exactly as written (requests would resolve '..' before sending)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.putheader("X-Zishu-Token", srv.secret)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture
def amy(runtime):
    """An image character with an emotion map."""
    data = character("acme/amy", "Amy", avatar={"image": "portrait.png"},
                     emotions={"Happy": {"expression": "happy"}, "开心": {"expression": "happy"}})
    install(runtime.registry, data, {"portrait.png": png()})
    return "acme/amy"


@pytest.fixture
def nia(runtime):
    """A Live2D character whose model acme/nia-model is installed (the core is not)."""
    model = make_manifest("acme/nia-model", kind="live2d", name="Nia model",
                          spec={"cubism": 4, "entry": "nia.model3.json", "expressions": ["Smile"], "motions": ["Idle"]})
    install(runtime.registry, model, {"nia.model3.json": json.dumps(MODEL3).encode(), "e/smile.exp3.json": b"{}"})
    data = character("acme/nia", "Nia", avatar={"live2d": "acme/nia-model"},
                     emotions={"happy": {"expression": "Smile", "motion": "TapBody"}, "生气": {"expression": "Angry"}})
    install(runtime.registry, data, {"card.txt": b"Nia"})
    return "acme/nia"


# -- what the page is told ------------------------------------------------------------------------


def test_an_image_character_gets_a_static_avatar_with_its_image(server, amy):
    info = call(server, "GET", "/api/avatar/acme/amy").json()
    assert info["kind"] == "image" and info["why"] == "" and info["core"] is False
    assert info["model_url"] is None and info["name"] == "Amy" and info["initial"] == "A"
    image = call(server, "GET", info["image_url"])
    assert image.status_code == 200 and image.content == png() and image.headers["Content-Type"] == "image/png"
    assert info["expressions"][: len(canonical_emotions())] == canonical_emotions()  # what a still avatar can show
    assert info["motions"] == []
    assert info["tags"][:2] == ["happy", "excited"] and "开心" in info["tags"] and "Happy" not in info["tags"]
    assert info["emotions"]["happy"] == {"expression": "happy", "motion": None}
    assert info["emotions"]["sad"] == {"expression": None, "motion": None}
    assert info["defaults"] == info["emotions"] and info["calibration"] == {}


def test_a_character_without_avatar_gets_its_initial_and_says_why(server, runtime):
    install(runtime.registry, character("acme/bo", "bo"), {"card.txt": b"x"})
    info = call(server, "GET", "/api/avatar/acme/bo").json()
    assert info["kind"] == "placeholder" and info["initial"] == "B" and info["image_url"] is None
    assert "no avatar" in info["why"]


def test_a_live2d_character_without_the_core_is_static_and_says_how_to_get_it(server, nia):
    info = call(server, "GET", "/api/avatar/acme/nia").json()
    assert info["kind"] == "placeholder" and info["core"] is False and info["live2d"] == "acme/nia-model"
    assert info["model_url"] == "/avatar/models/acme/nia-model/nia.model3.json"
    assert "Cubism Core" in info["why"] and "zishu live2d core" in info["why"]
    assert "live2d.com/eula" in info["why"]
    assert info["expressions"] == ["Smile", "Angry"]  # the manifest's, then the model3.json's
    assert info["motions"] == ["Idle", "TapBody"]
    assert info["emotions"]["happy"] == {"expression": "Smile", "motion": "TapBody"}
    assert call(server, "GET", info["model_url"]).json() == MODEL3


def test_a_missing_live2d_model_or_character_is_reported(server, runtime):
    install(runtime.registry, character("acme/lost", "Lost", avatar={"live2d": "acme/gone"}), {"a.txt": b"a"})
    info = call(server, "GET", "/api/avatar/acme/lost").json()
    assert info["kind"] == "placeholder" and info["model_url"] is None
    assert "acme/gone" in info["why"] and "zishu install acme/gone" in info["why"]
    missing = call(server, "GET", "/api/avatar/acme/nobody")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "MODEL_NOT_AVAILABLE"
    bad = call(server, "GET", "/api/avatar/Acme!/x")
    assert bad.status_code == 400 and "not a resource id" in bad.json()["error"]["message"]


def test_the_core_is_served_once_installed_and_the_avatar_becomes_live2d(server, nia, runtime, tmp_path):
    absent = call(server, "GET", "/avatar/core.js")
    assert absent.status_code == 404 and absent.json()["error"]["code"] == "NOT_FOUND"
    assert "zishu live2d core" in absent.json()["error"]["message"]
    source = tmp_path / CORE_NAME
    source.write_bytes(FAKE_CORE)
    install_core(str(source), runtime.home)
    core = call(server, "GET", "/avatar/core.js")
    assert core.status_code == 200 and core.content == FAKE_CORE
    assert core.headers["Content-Type"].startswith("text/javascript")
    info = call(server, "GET", "/api/avatar/acme/nia").json()
    assert info["kind"] == "live2d" and info["core"] is True and info["why"] == ""


# A core stand-in whose version reads statically (4.1.0, latest moc3 format 3), and a Cubism 5 model.
CORE_41 = (b"/* Live2D Cubism Core (a stand-in for tests) */ var Live2DCubismCore;"
           b"var x={_csmGetLatestMocVersion:function(){return 3},_csmGetVersion:function(){return 67174400}};")
# One whose version only shows when it runs: the page must check it itself.
CORE_41_RUNTIME_ONLY = (b"/* Live2D Cubism Core (a stand-in for tests) */\nvar Live2DCubismCore = {Version: {"
                        b"csmGetVersion: function () { return ((4 << 24) | (1 << 16)) >>> 0; },"
                        b"csmGetLatestMocVersion: function () { return 1 + 2; }}};\n")
MOC3_V5 = b"MOC3" + bytes([5, 0]) + bytes(58)


@pytest.fixture
def mao(runtime):
    """A Live2D character whose model's .moc3 is Cubism 5's format (a synthetic header)."""
    model3 = {**MODEL3, "FileReferences": {**MODEL3["FileReferences"], "Moc": "mao.moc3"}}
    model = make_manifest("acme/mao-model", kind="live2d", name="Mao model",
                          spec={"cubism": 5, "entry": "mao.model3.json"})
    install(runtime.registry, model, {"mao.model3.json": json.dumps(model3).encode(), "mao.moc3": MOC3_V5})
    install(runtime.registry, character("acme/mao", "Mao", avatar={"live2d": "acme/mao-model"}), {"a.txt": b"a"})
    return "acme/mao"


def test_a_model_that_needs_a_newer_core_says_so_and_stays_still(server, mao, runtime, tmp_path):
    (tmp_path / CORE_NAME).write_bytes(CORE_41)
    install_core(str(tmp_path / CORE_NAME), runtime.home)
    info = call(server, "GET", "/api/avatar/acme/mao").json()
    assert info["kind"] == "placeholder" and info["core"] is True
    assert "this model needs a Cubism 5 core; yours is 4.1" in info["why"]
    assert info["moc"] == {"version": 5, "format": "5.0", "needs": "5"}
    (tmp_path / CORE_NAME).write_bytes(CORE_41_RUNTIME_ONLY)  # unknown here: the page decides
    install_core(str(tmp_path / CORE_NAME), runtime.home)
    info = call(server, "GET", "/api/avatar/acme/mao").json()
    assert info["kind"] == "live2d" and info["why"] == "" and info["moc"]["version"] == 5


def test_model_files_never_leave_the_model_folder(server, nia, runtime):
    (runtime.home / "secret.txt").write_text("secret")
    ok = "/avatar/models/acme/nia-model/e/smile.exp3.json"
    assert raw_get(server, ok) == 200
    for path in ("/avatar/models/acme/nia-model/../../../../secret.txt",
                 "/avatar/models/acme/nia-model/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
                 "/avatar/models/acme/nia-model/e/..%2f..%2f..%2f..%2f..%2fsecret.txt",
                 "/avatar/models/acme/nia-model/%2fetc/passwd"):
        assert raw_get(server, path) == 404, path
    assert call(server, "GET", "/avatar/models/acme/nia-model/nope.json").status_code == 404
    # only Live2D models are served this way, not other installed resources
    assert call(server, "GET", "/avatar/models/acme/nia/card.txt").status_code == 404
    assert call(server, "GET", "/avatar/models/acme/absent/x.json").status_code == 404


def test_symbolic_links_inside_a_model_folder_are_never_served(server, nia, runtime, tmp_path):
    """A model folder carrying a link to a file outside it (or to /) serves nothing through it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("TOP-SECRET-CONTENT")
    folder = runtime.registry.path("acme/nia-model")
    (folder / "evil.txt").symlink_to(outside / "private.txt")
    (folder / "root").symlink_to("/")
    (folder / "outside").symlink_to(outside, target_is_directory=True)
    (folder / "e" / "alias.json").symlink_to(folder / "e" / "smile.exp3.json")  # a link inside, too
    for path in ("evil.txt", "root/etc/passwd", "outside/private.txt", "e/alias.json"):
        r = call(server, "GET", f"/avatar/models/acme/nia-model/{path}", headers={"Accept": "application/json"})
        assert r.status_code == 404 and "TOP-SECRET" not in r.text and "root:" not in r.text, path
        assert r.json()["error"]["code"] == "NOT_FOUND"
    assert call(server, "GET", "/avatar/models/acme/nia-model/e/smile.exp3.json").status_code == 200


# -- calibration --------------------------------------------------------------------------------


def test_a_calibration_is_validated(server, nia):
    def put(body):
        return call(server, "PUT", "/api/avatar/acme/nia/emotions", json=body)

    cases = [
        ({"happy": {"expression": "Grin"}}, "unknown expression 'Grin'"),
        ({"happy": {"motion": "Dance"}}, "unknown motion group 'Dance'"),
        ({"happy": "Smile"}, "expected"),
        ({"happy": {"expression": 3}}, "expression"),
        ({"happy": {"face": "Smile"}}, "face"),
        ({"Happy": {}, "happy ": {}}, "same tag"),
        ({"": {}}, "empty"),
        ({"[a]b]": {}}, "bracket"),
        ({"x" * 40: {}}, "longer than"),
        (["happy"], "JSON object"),
    ]
    for body, message in cases:
        answer = put(body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["code"] == "USAGE" and message in answer.json()["error"]["message"], body
    assert get_setting(setting_key("acme/nia")) is None  # nothing was stored
    not_json = call(server, "PUT", "/api/avatar/acme/nia/emotions", data="{",
                    headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400


def test_a_calibration_is_stored_overlaid_and_can_be_undone(server, nia, runtime):
    first = {"Happy": {"expression": "Angry", "motion": None}, "sad": {"expression": "Smile", "motion": "Idle"}}
    saved = call(server, "PUT", "/api/avatar/acme/nia/emotions", json=first)
    assert saved.status_code == 200, saved.text
    assert saved.json()["previous"] == {}
    assert get_setting(setting_key("acme/nia")) == {
        "Happy": {"expression": "Angry", "motion": None}, "sad": {"expression": "Smile", "motion": "Idle"}}
    assert saved.json()["emotions"]["happy"] == {"expression": "Angry", "motion": None}
    assert saved.json()["defaults"]["happy"] == {"expression": "Smile", "motion": "TapBody"}

    nia_character = Character.installed(runtime.registry, "acme/nia")
    merged = emotion_map(nia_character)
    assert list(merged) == ["happy", "生气", "sad"]  # 'Happy' replaced the manifest's 'happy', no twin key
    assert merged["happy"].expression == "Angry" and merged["sad"].motion == "Idle"
    assert merged["生气"].expression == "Angry"  # untouched manifest entries stay
    tags = EmotionTags(merged)  # the tag parser accepts the merged map
    assert tags.lookup("HAPPY").target.expression == "Angry"

    second = call(server, "PUT", "/api/avatar/acme/nia/emotions", json={"sad": {"expression": None}})
    assert second.json()["previous"] == first
    assert get_setting(setting_key("acme/nia")) == {"sad": {"expression": None, "motion": None}}
    undo = call(server, "PUT", "/api/avatar/acme/nia/emotions", json=second.json()["previous"])
    assert undo.status_code == 200 and get_setting(setting_key("acme/nia")) == first
    cleared = call(server, "PUT", "/api/avatar/acme/nia/emotions", json={})
    assert cleared.json()["calibration"] == {} and emotion_map(nia_character)["happy"].expression == "Smile"


def test_a_static_avatar_is_calibrated_with_emotion_names_and_no_motions(server, amy):
    ok = call(server, "PUT", "/api/avatar/acme/amy/emotions", json={"sad": {"expression": "love"}})
    assert ok.status_code == 200 and ok.json()["emotions"]["sad"]["expression"] == "love"
    # a still avatar has no motion groups to check a motion against: kept for when it gets a model
    assert call(server, "PUT", "/api/avatar/acme/amy/emotions", json={"sad": {"motion": "Wave"}}).status_code == 200
    bad = call(server, "PUT", "/api/avatar/acme/amy/emotions", json={"sad": {"expression": "F05"}})
    assert bad.status_code == 400 and "'F05'" in bad.json()["error"]["message"]


def test_saved_calibrations_that_no_longer_read_are_skipped(runtime, amy):
    from zishu.db import set_setting

    set_setting(setting_key("acme/amy"), {"sad": {"expression": "love"}, "odd": {"face": 1}, "junk": 3})
    merged = emotion_map(Character.installed(runtime.registry, "acme/amy"))
    assert merged["sad"].expression == "love" and "odd" not in merged and "junk" not in merged
    set_setting(setting_key("acme/amy"), ["not", "a", "map"])
    assert emotion_map(Character.installed(runtime.registry, "acme/amy"))["Happy"].expression == "happy"


def test_save_emotion_map_returns_what_it_replaced(runtime):
    assert save_emotion_map("acme/x", {"happy": {"expression": "a"}}, ["a"]) == {}
    assert save_emotion_map("acme/x", {}, ["a"]) == {"happy": {"expression": "a", "motion": None}}
    with pytest.raises(UsageError, match="unknown expression 'b'"):
        validate_mapping({"happy": {"expression": "b"}}, ["a"])
    with pytest.raises(UsageError, match="at most"):
        validate_mapping({f"t{i}": {} for i in range(201)}, [])


# -- the command ----------------------------------------------------------------------------------


def _cli():
    from zishu.cli import LazyGroup, cli

    if "live2d" in cli.lazy:
        return cli
    return LazyGroup(name="zishu", lazy={"live2d": "zishu.commands.live2d:live2d_command"})


def test_zishu_live2d_core_copies_the_file_after_the_licence_notice(tmp_path):
    from click.testing import CliRunner

    home = tmp_path / "home"
    source = tmp_path / "dl" / CORE_NAME
    source.parent.mkdir()
    source.write_bytes(FAKE_CORE)
    runner = CliRunner()
    env = {"ZISHU_HOME": str(home)}
    before = runner.invoke(_cli(), ["live2d", "core"], env=env)
    assert before.exit_code == 0 and "Not installed" in before.output
    result = runner.invoke(_cli(), ["live2d", "core", str(source)], env=env)
    assert result.exit_code == 0, result.output
    assert "live2d-proprietary-software-license-agreement" in result.output
    assert core_path(home).read_bytes() == FAKE_CORE and str(core_path(home)) in result.output
    assert "Installed:" in runner.invoke(_cli(), ["live2d", "core"], env=env).output

    wrong = tmp_path / "other.js"
    wrong.write_text("console.log('hello')")
    refused = runner.invoke(_cli(), ["live2d", "core", str(wrong)], env=env)
    assert refused.exit_code == 2 and "does not look like the Cubism Core" in refused.output
    missing = runner.invoke(_cli(), ["live2d", "core", str(tmp_path / "nope.js")], env=env)
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert core_path(home).read_bytes() == FAKE_CORE  # a refused file never replaces the core


def test_zishu_live2d_core_downloads_a_url(tmp_path, file_server):
    home = tmp_path / "home"
    file_server.files["/core.js"] = FAKE_CORE
    assert install_core(f"{file_server.url}/core.js", home) == core_path(home)
    assert core_path(home).read_bytes() == FAKE_CORE
    from zishu.errors import RemoteError

    with pytest.raises(RemoteError, match="could not download"):
        install_core(f"{file_server.url}/missing.js", home)


# -- in Chromium --------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_calibrator_previews_on_a_static_avatar_and_saves_with_undo(browser, server, amy):
    from playwright.sync_api import expect

    with watched_page(browser, server.url_with_secret("/discover")) as page:
        page.goto(server.browser_url.rstrip("/") + "/characters/acme/amy/expressions")
        stage = page.get_by_test_id("avatar")
        expect(stage).to_have_attribute("data-avatar", "image")
        expect(stage).to_have_attribute("data-expression", "")
        expect(page.get_by_test_id("avatar-image")).to_be_visible()
        page.locator('[data-testid="preview"][data-name="sad"]').click()
        expect(stage).to_have_attribute("data-expression", "sad")
        expect(page.get_by_test_id("avatar-badge")).to_contain_text("sad")
        expect(page.get_by_test_id("current-expression")).to_have_text("sad")
        page.get_by_test_id("preview-neutral").click()
        expect(stage).to_have_attribute("data-expression", "")

        row = page.locator('[data-testid="emotion-row"][data-tag="sad"]')
        row.get_by_test_id("emotion-expression").select_option("love")
        expect(row.get_by_test_id("calibrated")).to_be_visible()
        row.get_by_test_id("try-emotion").click()
        expect(stage).to_have_attribute("data-expression", "love")
        page.get_by_test_id("save-emotions").click()
        toast = page.get_by_test_id("toast").filter(has_text="Saved Amy's emotion map")
        expect(toast).to_be_visible()
        assert get_setting(setting_key("acme/amy")) == {"sad": {"expression": "love", "motion": None}}
        toast.get_by_test_id("undo").click()
        expect(page.get_by_test_id("toast").filter(has_text="Restored")).to_be_visible()
        assert get_setting(setting_key("acme/amy")) == {}
        expect(row.get_by_test_id("emotion-expression")).to_have_value("")
        expect(row.get_by_test_id("calibrated")).to_be_hidden()

        # the lip-sync helper: silence is shut, a loud frame opens the mouth, smoothly
        levels = page.evaluate("""async () => {
            const { mouthLevel } = await import('/static/avatar.js');
            const fake = (v) => ({ fftSize: 256, getFloatTimeDomainData: (b) => b.fill(v) });
            const quiet = fake(0.005), loud = fake(0.5);
            const out = [mouthLevel(quiet)];
            for (let i = 0; i < 3; i++) out.push(mouthLevel(loud));
            const shared = fake(0.5); mouthLevel(shared);
            shared.getFloatTimeDomainData = (b) => b.fill(0);
            out.push(mouthLevel(shared));
            return out;
        }""")
        assert levels[0] == 0
        assert 0 < levels[1] < levels[2] < levels[3] <= 1
        assert 0 < levels[4] < 0.6  # closing, not snapped shut


@pytest.mark.browser
def test_the_static_avatar_shows_a_placeholder_and_why(browser, server, nia):
    from playwright.sync_api import expect

    with watched_page(browser, server.url_with_secret("/discover")) as page:
        page.goto(server.browser_url.rstrip("/") + "/characters/acme/nia/expressions")
        stage = page.get_by_test_id("avatar")
        expect(stage).to_have_attribute("data-avatar", "placeholder")
        expect(page.get_by_test_id("avatar-initial")).to_have_text("N")
        expect(page.get_by_test_id("avatar-why")).to_contain_text("Live2D needs the Cubism Core")
        expect(page.get_by_test_id("expression")).to_have_count(2)
        expect(page.get_by_test_id("motion")).to_have_count(2)
        page.locator('[data-testid="preview"][data-name="Angry"]').click()
        expect(stage).to_have_attribute("data-expression", "Angry")


@pytest.mark.browser
def test_a_live2d_avatar_that_cannot_start_falls_back_to_a_still_one(browser, server, nia, runtime, tmp_path):
    from playwright.sync_api import expect

    (tmp_path / CORE_NAME).write_bytes(FAKE_CORE)  # says Live2DCubismCore but is not the core
    install_core(str(tmp_path / CORE_NAME), runtime.home)
    with watched_page(browser, server.url_with_secret("/discover")) as page:
        page.goto(server.browser_url.rstrip("/") + "/characters/acme/nia/expressions")
        stage = page.get_by_test_id("avatar")
        expect(stage).to_have_attribute("data-avatar", "placeholder")
        expect(page.get_by_test_id("avatar-why")).to_contain_text("Live2D could not start here")
        expect(page.get_by_test_id("avatar-why")).to_contain_text("not the Cubism Core")


@pytest.mark.browser
def test_a_model_newer_than_the_running_core_falls_back_with_what_it_needs(browser, server, mao, runtime, tmp_path):
    from playwright.sync_api import expect

    (tmp_path / CORE_NAME).write_bytes(CORE_41_RUNTIME_ONLY)
    install_core(str(tmp_path / CORE_NAME), runtime.home)
    with watched_page(browser, server.url_with_secret("/discover")) as page:
        page.goto(server.browser_url.rstrip("/") + "/characters/acme/mao/expressions")
        stage = page.get_by_test_id("avatar")
        expect(stage).to_have_attribute("data-avatar", "placeholder")
        expect(page.get_by_test_id("avatar-initial")).to_have_text("M")  # never a blank box
        expect(page.get_by_test_id("avatar-why")).to_contain_text(
            "Live2D is off for Mao: this model needs a Cubism 5 core; yours is 4.1")
        expect(page.locator("canvas")).to_have_count(0)


@pytest.mark.browser
def test_render_orders_of_cubism_5_r5_cores_are_given_back_to_the_renderer(browser, server, amy):
    with watched_page(browser, server.url_with_secret("/discover")) as page:
        page.goto(server.browser_url.rstrip("/") + "/characters/acme/amy/expressions")
        result = page.evaluate("""async () => {
            const { adaptRenderOrders } = await import('/static/avatar.js');
            // R5 (6.x): drawables have no renderOrders; the model orders drawables and offscreens
            const r5 = { Model: { fromMoc: () => ({ drawables: { count: 3 },
                                                   getRenderOrders: () => new Int32Array([7, 2, 4, 0]) }) } };
            // 4.x/5.0-5.1: left alone
            const old = { Model: { fromMoc: () => ({ drawables: { count: 2,
                                                                  renderOrders: new Int32Array([1, 0]) } }) } };
            adaptRenderOrders(r5); adaptRenderOrders(r5); adaptRenderOrders(old);
            return [Array.from(r5.Model.fromMoc().drawables.renderOrders),
                    Array.from(old.Model.fromMoc().drawables.renderOrders)];
        }""")
        assert result == [[2, 0, 1], [1, 0]]


# -- a real Live2D model (only where one is provided) -------------------------------------------

LIVE2D_MODEL = os.environ.get("ZISHU_TEST_LIVE2D_MODEL")
LIVE2D_CORE = os.environ.get("ZISHU_TEST_LIVE2D_CORE")


@pytest.mark.browser
@pytest.mark.skipif(not (LIVE2D_MODEL and LIVE2D_CORE),
                    reason="set ZISHU_TEST_LIVE2D_MODEL (a folder with a .model3.json) and ZISHU_TEST_LIVE2D_CORE "
                           "(live2dcubismcore.min.js) to render a real Live2D model: neither may be committed")
def test_a_real_live2d_model_renders_and_changes_expression(browser, server, runtime):
    from playwright.sync_api import expect

    folder = Path(LIVE2D_MODEL)
    entry = next(iter(sorted(folder.glob("*.model3.json"))))
    refs = json.loads(entry.read_text(encoding="utf-8"))["FileReferences"]
    names = [e["Name"] for e in refs.get("Expressions", [])]
    # the mouth parameter the avatar drives: the model's LipSync group (Mao's is ParamA), else the standard one
    lip_sync = [g.get("Ids") or [] for g in json.loads(entry.read_text(encoding="utf-8")).get("Groups") or []
                if g.get("Name") == "LipSync"]
    mouth_id = (lip_sync[0] if lip_sync and lip_sync[0] else ["ParamMouthOpenY"])[0]
    assert names, f"{entry} lists no expressions"
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    install(runtime.registry, make_manifest("acme/real-model", kind="live2d", name="Real",
                                            spec={"cubism": 4, "entry": entry.name}), files)
    install(runtime.registry, character("acme/real", "Real", avatar={"live2d": "acme/real-model"}), {"a.txt": b"a"})
    # what the files say this core can do with this model: render it, or refuse it with the reason
    core_version = read_core_version(Path(LIVE2D_CORE).read_bytes())
    _, refusal = check_live2d(Path(LIVE2D_CORE), entry)
    if core_version and core_version.problem():
        with pytest.raises(UsageError, match="older than"):
            install_core(LIVE2D_CORE, runtime.home)
        core_path(runtime.home).parent.mkdir(parents=True, exist_ok=True)  # put there by hand: the app refuses it too
        shutil.copyfile(LIVE2D_CORE, core_path(runtime.home))
    else:
        install_core(LIVE2D_CORE, runtime.home)

    # WebGL without a GPU: Chromium's software renderer (SwiftShader), which it only allows when asked
    args = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"]
    args += ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
    problems: list[str] = []
    webgl = browser.browser_type.launch(executable_path=shutil.which("chromium"), args=args)
    try:
        page = webgl.new_page(viewport={"width": 1000, "height": 800})
        page.on("console", lambda m: m.type == "error" and "Failed to load resource" not in m.text
                and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server.url_with_secret("/characters/acme/real/expressions"))
        stage = page.get_by_test_id("avatar")
        print(f"\nLive2D core {core_version or '(version unread)'} x {folder.name}: "
              + (f"refused: {refusal}" if refusal else "expected to render"))
        if refusal:  # a still avatar with the reason, never a blank box
            expect(stage).to_have_attribute("data-avatar", "placeholder", timeout=60_000)
            expect(page.get_by_test_id("avatar-why")).to_contain_text(refusal.split(" (")[0].split(": use")[0])
            expect(page.get_by_test_id("avatar-initial")).to_have_text("R")
        else:
            expect(stage).to_have_attribute("data-avatar", "live2d", timeout=60_000)
            page.wait_for_timeout(500)
            drawn = _non_blank_fraction(stage.screenshot())
            assert drawn > 0.02, f"the model drew on {drawn:.1%} of the stage"
            page.locator(f'[data-testid="preview"][data-name="{names[-1]}"]').click()
            expect(stage).to_have_attribute("data-expression", names[-1])
            mouth = page.evaluate("""(mouthId) => new Promise((resolve) => {
                const avatar = document.querySelector('[data-testid="avatar"]').zishuAvatar;
                avatar.mouth(0.8);
                const internal = avatar.model.internalModel;
                internal.on('beforeModelUpdate', function read() {
                    internal.off('beforeModelUpdate', read);
                    resolve(internal.coreModel.getParameterValueById(mouthId));
                });
            })""", mouth_id)
            assert abs(mouth - 0.8) < 1e-6, mouth
    finally:
        webgl.close()
    assert not problems, problems


def _non_blank_fraction(png_bytes: bytes) -> float:
    from PIL import Image, ImageChops

    image = Image.open(io.BytesIO(png_bytes)).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((1, 1)))
    histogram = ImageChops.difference(image, background).convert("L").histogram()
    return sum(histogram[30:]) / (image.width * image.height)
