"""Which Cubism Core is installed and what it runs (zishu.companion.cubism_core), on synthetic files
shaped like the real ones (no Live2D code): the version read from each layout of core.js, the moc3
header, the refusal messages, and `zishu live2d core` saying the version and refusing a 3.x core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zishu.companion.cubism_core import (
    CoreVersion,
    check_live2d,
    describe,
    model_moc_version,
    model_refusal,
    read_core_version,
    read_moc_version,
)
from zishu.companion.live2d_core import core_path, install_core
from zishu.errors import UsageError

BANNER = ("/**\n * Live2D Cubism Core (a synthetic stand-in for tests)\n */\n"
          "var Live2DCubismCore;!function(Live2DCubismCore){")

# The three layouts the published cores use for csmGetVersion / csmGetLatestMocVersion.
ASMJS_4_1 = BANNER + ("var x={_csmGetLatestMocVersion:function(){return 3},_csmGetVersion:function(){return 67174400},"
                      "_csmMalloc:function(a){return 0}};}(Live2DCubismCore||(Live2DCubismCore={}));")
EXPORTS_5_1 = BANNER + ("b._csmGetVersion=function(){return b.asm.f.apply(null,arguments)},"
                        "b._csmGetLatestMocVersion=function(){return b.asm.g.apply(null,arguments)};"
                        "var u={e:function(){return 0},f:function(){return 83951616},"
                        "g:function(){return 5},h:function(){}};"
                        "}(Live2DCubismCore||(Live2DCubismCore={}));")
NAMED_3_3 = BANNER + ("function Ga(){return 50528257}function Ha(a){return a|0}"
                      "var asm={_csmGetVersion:Ga,_csmMalloc:Ha};}(Live2DCubismCore||(Live2DCubismCore={}));")
UNREADABLE = BANNER + "var v=function(){return (4<<24)|(1<<16)};}(Live2DCubismCore||(Live2DCubismCore={}));"


def moc3(version: int) -> bytes:
    """A synthetic .moc3 header: magic, format byte, endianness flag, padding."""
    return b"MOC3" + bytes([version, 0]) + bytes(58)


def write_model(folder: Path, version: int | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if version is not None:
        (folder / "m.moc3").write_bytes(moc3(version))
    entry = folder / "m.model3.json"
    entry.write_text(json.dumps({"Version": 3, "FileReferences": {"Moc": "m.moc3", "Textures": []}}))
    return entry


@pytest.mark.parametrize("text, version, latest", [
    (ASMJS_4_1, "4.1.0", 3),
    (EXPORTS_5_1, "5.1.0", 5),
    (NAMED_3_3, "3.3.1", 2),  # no csmGetLatestMocVersion in 3.x: inferred from the version
])
def test_the_core_version_is_read_from_each_layout(text, version, latest):
    read = read_core_version(text.encode())
    assert read is not None and str(read) == version and read.latest_moc == latest


def test_an_unreadable_or_implausible_version_is_none():
    assert read_core_version(UNREADABLE) is None
    assert read_core_version(b"var Live2DCubismCore = {};") is None
    assert read_core_version(BANNER + "_csmGetVersion:function(){return 7}") is None  # major 0
    # two different constants for one function: not trusted
    assert read_core_version(BANNER + "csmGetVersion:function(){return 67174400},"
                                      "_csmGetVersion:function(){return 83951616}") is None


def test_what_a_core_runs_in_words():
    assert describe(read_core_version(ASMJS_4_1)) == (
        "Cubism Core 4.1.0: it runs models made with Cubism 3.0 to 4.1 (moc3 formats 1-3); "
        "Cubism 4.2 and newer models need a newer core.")
    assert describe(read_core_version(EXPORTS_5_1)) == (
        "Cubism Core 5.1.0: it runs models made with Cubism 3.0 to 5.2 (moc3 formats 1-5).")
    assert "older than pixi-live2d-display 0.4" in describe(read_core_version(NAMED_3_3))
    assert "could not be read" in describe(None)


def test_the_moc3_header_gives_the_format():
    assert read_moc_version(moc3(3)) == 3 and read_moc_version(moc3(6)) == 6
    assert read_moc_version(b"MOC3") is None  # too short
    assert read_moc_version(b"MOC2" + bytes([3])) is None
    assert read_moc_version(moc3(0)) is None


def test_the_model_file_names_its_moc3(tmp_path):
    assert model_moc_version(write_model(tmp_path / "a", 5)) == 5
    assert model_moc_version(write_model(tmp_path / "b", None)) is None  # .moc3 missing
    escape = tmp_path / "c" / "m.model3.json"
    escape.parent.mkdir()
    (tmp_path / "outside.moc3").write_bytes(moc3(2))
    escape.write_text(json.dumps({"FileReferences": {"Moc": "../outside.moc3"}}))
    assert model_moc_version(escape) is None  # never read outside the model's folder
    (tmp_path / "c" / "m.model3.json").write_text("{not json")
    assert model_moc_version(escape) is None


def test_refusals_say_what_the_model_needs():
    core41 = CoreVersion.from_number(0x04010000, 3)
    core50 = CoreVersion.from_number(0x05000000, 5)
    assert model_refusal(core41, 5).startswith("this model needs a Cubism 5 core; yours is 4.1")
    assert model_refusal(core41, 4).startswith("this model needs a Cubism 4.2 core; yours is 4.1")
    assert model_refusal(core41, 3) == "" and model_refusal(core50, 5) == ""
    assert model_refusal(core41, None) == "" and model_refusal(None, 3) == ""
    # the renderer draws formats up to 5 whatever the core reads
    assert "pixi-live2d-display 0.4 cannot draw" in model_refusal(CoreVersion.from_number(0x06000001, 6), 6)
    assert "pixi-live2d-display 0.4 cannot draw" in model_refusal(None, 6)
    assert "pixi-live2d-display 0.4 cannot draw" in model_refusal(core41, 6)  # not "needs a newer core": none helps
    assert "older than pixi-live2d-display" in model_refusal(CoreVersion.from_number(0x03030001), 1)


def test_check_live2d_reads_both_files(tmp_path):
    core = tmp_path / "core.js"
    core.write_text(ASMJS_4_1)
    moc, refusal = check_live2d(core, write_model(tmp_path / "mao", 5))
    assert moc == {"version": 5, "format": "5.0", "needs": "5"}
    assert refusal.startswith("this model needs a Cubism 5 core; yours is 4.1")
    core.write_text(EXPORTS_5_1)  # a newer core replaces it: read again
    assert check_live2d(core, tmp_path / "mao" / "m.model3.json") == (moc, "")


def test_zishu_live2d_core_says_the_version_and_refuses_a_core_too_old(tmp_path):
    from click.testing import CliRunner

    from zishu.cli import LazyGroup, cli

    live2d_command = cli if "live2d" in cli.lazy else LazyGroup(
        name="zishu", lazy={"live2d": "zishu.commands.live2d:live2d_command"})
    home = tmp_path / "home"
    env = {"ZISHU_HOME": str(home)}
    good, old = tmp_path / "41.js", tmp_path / "33.js"
    good.write_text(ASMJS_4_1)
    old.write_text(NAMED_3_3)
    runner = CliRunner()
    installed = runner.invoke(live2d_command, ["live2d", "core", str(good)], env=env)
    assert installed.exit_code == 0, installed.output
    assert "Cubism Core 4.1.0: it runs models made with Cubism 3.0 to 4.1" in installed.output
    status = runner.invoke(live2d_command, ["live2d", "core"], env=env)
    assert "Installed:" in status.output and "Cubism Core 4.1.0" in status.output
    refused = runner.invoke(live2d_command, ["live2d", "core", str(old)], env=env)
    assert refused.exit_code == 2 and "Cubism Core 3.3.1 is older than pixi-live2d-display 0.4" in refused.output
    assert core_path(home).read_text() == ASMJS_4_1  # the refused core never replaced the good one
    with pytest.raises(UsageError, match="Cubism SDK for Web 4 or 5"):
        install_core(str(old), home)
