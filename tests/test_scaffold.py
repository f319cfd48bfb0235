"""``zishu catalog new``: the scaffold validates, carries the real sha256/size and release URLs,
refuses to overwrite, and prints the gh command that uploads the files."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from zishu.catalog import read_manifest
from zishu.cli import cli
from zishu_catalog import scaffold


def run_new(*args: str):
    return CliRunner().invoke(cli, ["catalog", "new", *args], catch_exceptions=False)


def make_file(folder: Path, name: str, size: int = 3000) -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def test_new_writes_a_valid_manifest_with_real_hashes(registry: Path, tmp_path: Path):
    weights = make_file(tmp_path, "tiny-q4.gguf", 5000)
    result = run_new("--kind", "model", "--id", "alice/tiny-llm", "--license", "Apache-2.0",
                     "--root", str(registry), str(weights))
    assert result.exit_code == 0, result.output

    path = registry / "resources" / "alice" / "tiny-llm.yaml"
    text = path.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../../resource.schema.json"
    resource = read_manifest(path)
    assert resource.id == "alice/tiny-llm" and resource.kind == "model"
    assert resource.spec.format == "gguf" and resource.spec.role == "llm"
    assert resource.license == "Apache-2.0"
    assert resource.maintainers == ["alice"]
    assert resource.name.startswith("TODO") and resource.summary.startswith("TODO")
    (version,) = resource.versions
    assert version.version == "1.0.0"
    (entry,) = version.files
    assert entry.name == "tiny-q4.gguf"
    assert entry.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert entry.size == 5000
    assert entry.url == "https://github.com/alice/tiny-llm/releases/download/v1.0.0/tiny-q4.gguf"

    assert f"gh release upload v1.0.0 {weights} --repo alice/tiny-llm" in result.output
    assert "Next steps" in result.output


def test_repo_tag_and_version_options(registry: Path, tmp_path: Path):
    a = make_file(tmp_path, "voice.pth")
    b = make_file(tmp_path, "ref.wav")
    result = run_new("--kind", "voice", "--id", "bob/narrator", "--version", "2.1.0", "--repo", "Bob/Voices",
                     "--tag", "narrator-2.1.0", "--spec", "engine=gpt-sovits", "--spec", "language=zh-CN",
                     "--root", str(registry), str(a), str(b))
    assert result.exit_code == 0, result.output
    resource = read_manifest(registry / "resources" / "bob" / "narrator.yaml")
    urls = [f.url for f in resource.versions[0].files]
    assert urls == [
        "https://github.com/Bob/Voices/releases/download/narrator-2.1.0/voice.pth",
        "https://github.com/Bob/Voices/releases/download/narrator-2.1.0/ref.wav",
    ]
    assert resource.versions[0].version == "2.1.0"
    assert resource.spec.engine == "gpt-sovits" and resource.spec.language == "zh-CN"
    assert f"gh release upload narrator-2.1.0 {a} {b} --repo Bob/Voices" in result.output


def test_refuses_to_overwrite_unless_forced(registry: Path, tmp_path: Path):
    weights = make_file(tmp_path, "m.onnx")
    args = ["--kind", "model", "--id", "alice/m", "--role", "asr", "--root", str(registry), str(weights)]
    assert run_new(*args).exit_code == 0
    path = registry / "resources" / "alice" / "m.yaml"
    path.write_text(path.read_text() + "# edited by hand\n")

    again = run_new(*args)
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert path.read_text().endswith("# edited by hand\n")

    forced = run_new(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "edited by hand" not in path.read_text()
    assert read_manifest(path).spec.format == "onnx"


def test_folders_are_refused(registry: Path, tmp_path: Path):
    folder = tmp_path / "model-dir"
    folder.mkdir()
    make_file(folder, "a.safetensors")
    result = run_new("--kind", "model", "--id", "alice/m", "--role", "image", "--root", str(registry), str(folder))
    assert result.exit_code == 2
    assert "is a folder" in result.output and "archive" in result.output
    assert not (registry / "resources" / "alice").exists()


@pytest.mark.parametrize(
    ("kind", "files", "extra"),
    [
        ("character", ["avatar.png"], []),
        ("character", [], []),
        ("live2d", ["hiyori.model3.json", "hiyori.moc3", "texture_00.png"], []),
        ("lora", ["style.safetensors"], []),
        ("lora", ["adapter_model.safetensors", "adapter_config.json"], []),
        ("model", ["encoder.onnx"], ["--role", "asr"]),
        ("model", ["weights.bin"], ["--format", "pytorch", "--role", "tts"]),
        ("voice", ["speaker.pth"], []),
        ("plugin", ["zishu_weather-1.0.0-py3-none-any.whl"], []),
    ],
)
def test_every_kind_gets_a_scaffold_that_validates(registry: Path, tmp_path: Path, kind, files, extra):
    paths = [make_file(tmp_path, name, 100) for name in files]
    result = run_new("--kind", kind, "--id", "carol/thing", "--root", str(registry), *extra, *map(str, paths))
    assert result.exit_code == 0, result.output
    resource = read_manifest(registry / "resources" / "carol" / "thing.yaml")
    assert [f.name for f in resource.versions[0].files] == files
    if kind == "plugin":
        assert resource.spec.distribution == "zishu-weather"
        assert resource.spec.wheel == files[0]
    if kind == "live2d":
        assert resource.spec.entry == "hiyori.model3.json"
    if kind == "lora":
        assert resource.spec.target == ("llm" if "adapter_config.json" in files else "image")
    if not files:
        assert "gh release upload" not in result.output


@pytest.mark.parametrize(
    ("kind", "files", "extra", "message"),
    [
        ("model", ["weights.bin"], ["--role", "llm"], "--format"),
        ("model", ["encoder.onnx"], [], "--role"),
        ("live2d", ["texture.png"], [], ".model3.json"),
        ("plugin", ["plugin.zip"], [], ".whl"),
        ("model", [], [], "FILES"),
        ("model", ["my weights.gguf"], [], "rename"),
    ],
)
def test_unusable_input_is_refused_clearly(registry: Path, tmp_path: Path, kind, files, extra, message):
    paths = [make_file(tmp_path, name, 10) for name in files]
    result = run_new("--kind", kind, "--id", "carol/thing", "--root", str(registry), *extra, *map(str, paths))
    assert result.exit_code == 2
    assert message in result.output
    assert not (registry / "resources" / "carol").exists()


def test_bad_id_and_version_are_usage_errors(registry: Path, tmp_path: Path):
    weights = make_file(tmp_path, "m.gguf")
    bad_id = run_new("--kind", "model", "--id", "Alice/M", "--root", str(registry), str(weights))
    assert bad_id.exit_code == 2 and "--id" in bad_id.output
    bad_version = run_new("--kind", "model", "--id", "alice/m", "--version", "1.0", "--root", str(registry),
                          str(weights))
    assert bad_version.exit_code == 2 and "semantic version" in bad_version.output


def test_spec_settings_reach_nested_fields_and_are_validated(registry: Path, tmp_path: Path):
    avatar = make_file(tmp_path, "face.webp")
    ok = run_new("--kind", "character", "--id", "dan/aria", "--root", str(registry),
                 "--spec", "persona=You are Aria.", "--spec", "voice.engine=espeak-ng", str(avatar))
    assert ok.exit_code == 0, ok.output
    resource = read_manifest(registry / "resources" / "dan" / "aria.yaml")
    assert resource.spec.persona == "You are Aria."
    assert resource.spec.voice.engine == "espeak-ng"
    assert resource.spec.avatar.image == "face.webp"

    bad = run_new("--kind", "model", "--id", "dan/m", "--role", "wizard", "--root", str(registry),
                  str(make_file(tmp_path, "m.gguf")))
    assert bad.exit_code == 4
    assert "spec.role" in bad.output


def test_big_files_are_hashed_in_a_stream_with_a_progress_bar(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(scaffold, "BIG_FILE", 1)
    monkeypatch.setattr(scaffold, "CHUNK", 1000)
    data = os.urandom(10_500)
    path = tmp_path / "big.gguf"
    path.write_bytes(data)
    out = io.StringIO()
    from rich.console import Console

    [(digest, size)] = scaffold.measure_files([path], Console(file=out, force_terminal=True))
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert "sha256 big.gguf" in out.getvalue()


def test_live2d_files_keep_their_sub_folders(registry: Path, tmp_path: Path):
    model = tmp_path / "hiyori"
    (model / "motions").mkdir(parents=True)
    (model / "hiyori.2048").mkdir()
    paths = [make_file(model, "hiyori.model3.json"), make_file(model, "hiyori.moc3"),
             make_file(model, "hiyori.2048/texture_00.png"), make_file(model, "motions/idle.motion3.json")]
    result = run_new("--kind", "live2d", "--id", "carol/hiyori", "--root", str(registry), *map(str, paths))
    assert result.exit_code == 0, result.output
    resource = read_manifest(registry / "resources" / "carol" / "hiyori.yaml")
    files = resource.versions[0].files
    assert [f.name for f in files] == ["hiyori.model3.json", "hiyori.moc3", "hiyori.2048/texture_00.png",
                                       "motions/idle.motion3.json"]
    # a release holds flat names: the asset of motions/idle.motion3.json is motions.idle.motion3.json
    assert files[3].url == "https://github.com/carol/hiyori/releases/download/v1.0.0/motions.idle.motion3.json"
    assert "mkdir -p release-assets" in result.output
    assert f"cp {paths[3]} release-assets/motions.idle.motion3.json" in result.output
    assert "release-assets/hiyori.2048.texture_00.png" in result.output


def test_base_keeps_sub_folders_for_any_kind_and_refuses_files_outside_it(registry: Path, tmp_path: Path):
    (tmp_path / "voice" / "refs").mkdir(parents=True)
    a = make_file(tmp_path / "voice", "speaker.pth")
    b = make_file(tmp_path / "voice" / "refs", "calm.wav")
    ok = run_new("--kind", "voice", "--id", "carol/v", "--base", str(tmp_path / "voice"), "--root", str(registry),
                 str(a), str(b))
    assert ok.exit_code == 0, ok.output
    assert [f.name for f in read_manifest(registry / "resources" / "carol" / "v.yaml").versions[0].files] == [
        "speaker.pth", "refs/calm.wav"]
    outside = run_new("--kind", "voice", "--id", "carol/w", "--base", str(tmp_path / "voice" / "refs"),
                      "--root", str(registry), str(a))
    assert outside.exit_code == 2 and "is not inside --base" in outside.output


def test_two_files_that_would_share_one_asset_are_refused(registry: Path, tmp_path: Path):
    (tmp_path / "m" / "a").mkdir(parents=True)
    x = make_file(tmp_path / "m" / "a", "b.json")
    y = make_file(tmp_path / "m", "a.b.json")
    result = run_new("--kind", "voice", "--id", "carol/v", "--base", str(tmp_path / "m"), "--root", str(registry),
                     str(x), str(y))
    assert result.exit_code == 2 and "'a.b.json'" in result.output and "distinct names" in result.output
