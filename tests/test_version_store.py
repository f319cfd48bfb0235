"""One version store for installed resources and the user's characters: ``zishu gc`` running (in a
thread, and in another process) while a character is saved 50 times loses nothing: every save can
be read back afterwards and registry.json agrees with the folders on disk."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from zishu.companion import characters as chars
from zishu.resources.install import Installer, manifest_of
from zishu.resources.versions import MANIFEST, VersionStore

SAVES = 50

GC_LOOP = """
import sys
from pathlib import Path
from zishu.resources.install import Installer
from zishu.resources.versions import VersionStore

home, started, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
installer = Installer(VersionStore(home), fetcher=None)  # what `zishu gc` does
runs = 0
while not stop.exists():
    installer.gc(home / "partials")
    runs += 1
    started.write_text(str(runs))
"""


def on_disk(home: Path) -> dict[str, list[str]]:
    """Every complete version folder (manifest.json in it), by resource id."""
    found: dict[str, list[str]] = {}
    for manifest in (home / "resources").glob(f"*/*/*/{MANIFEST}"):
        folder = manifest.parent
        if not folder.name.startswith("."):
            found.setdefault(f"{folder.parent.parent.name}/{folder.parent.name}", []).append(folder.name)
    return {rid: sorted(versions) for rid, versions in found.items()}


def recorded(home: Path) -> dict[str, list[str]]:
    data = json.loads((home / "registry.json").read_text(encoding="utf-8"))
    return {rid: sorted(versions) for rid, versions in data["resources"].items()}


def wait_for(path: Path, process: subprocess.Popen) -> None:
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the gc process ended: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.05)


@pytest.mark.parametrize("where", ["thread", "process"])
def test_gc_while_a_character_is_saved_50_times_loses_nothing(runtime, tmp_path: Path, where: str) -> None:
    home = runtime.home
    rid = chars.create_character(runtime, {"name": "Mio", "persona": "You are Mio. Save 0."})
    errors: list[BaseException] = []
    stop = threading.Event()
    runs = [0]

    def collect() -> None:
        installer = Installer(VersionStore(home), fetcher=None)  # its own store, as `zishu gc` has
        while not stop.is_set():
            try:
                installer.gc(home / "partials")
            except Exception as e:
                errors.append(e)
            runs[0] += 1

    started, stop_file = tmp_path / "gc-started", tmp_path / "gc-stop"
    if where == "thread":
        worker = threading.Thread(target=collect)
        worker.start()
        while not runs[0] and worker.is_alive():
            time.sleep(0.01)
    else:
        process = subprocess.Popen([sys.executable, "-c", GC_LOOP, str(home), str(started), str(stop_file)],
                                   stderr=subprocess.PIPE, text=True)
        wait_for(started, process)

    versions = {"1.0.0": "You are Mio. Save 0."}
    try:
        for i in range(1, SAVES + 1):
            persona = f"You are Mio. Save {i}."
            try:
                saved = chars.update_character(runtime, rid, {"persona": persona})
            except Exception as e:
                errors.append(e)
                continue
            assert saved["changed"]
            versions[saved["version"]] = persona
    finally:
        if where == "thread":
            stop.set()
            worker.join(timeout=120)
            assert not worker.is_alive(), "gc is stuck"
        else:
            stop_file.write_text("stop")
            assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
            runs[0] = int(started.read_text())

    assert not errors, errors
    assert runs[0] >= 1
    assert len(versions) == SAVES + 1  # every save made a version
    registry = VersionStore(home)
    for version, persona in versions.items():  # every save can be read back
        assert manifest_of(registry.path(rid, version)).spec.persona == persona
    assert chars.get_character(runtime, rid)["persona"] == f"You are Mio. Save {SAVES}."
    assert recorded(home) == on_disk(home) == {rid: sorted(versions)}  # registry.json agrees with disk


def test_gc_leaves_a_version_being_assembled_alone_and_removes_it_once_abandoned(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    with store.assembling("alice/model", "1.0.0"):  # a download in progress, outside the store's lock
        staging = store.staging("alice/model", "1.0.0")
        (staging / "model.bin").write_bytes(b"x" * 100)
        assert Installer(VersionStore(tmp_path), fetcher=None).gc() == 0
        assert (staging / "model.bin").exists()
    assert Installer(VersionStore(tmp_path), fetcher=None).gc() == 100  # abandoned: a leftover now
    assert not staging.exists()


def test_file_inside_refuses_links_climbs_and_names_the_file_system_refuses(tmp_path):
    from zishu.resources.versions import file_inside

    folder = tmp_path / "v"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.png").write_bytes(b"png")
    (folder / "link").symlink_to(tmp_path)
    assert file_inside(folder, "sub/a.png") == folder / "sub" / "a.png"
    assert file_inside(folder, "../v/sub/a.png") is None and file_inside(folder, "link/v/sub/a.png") is None
    assert file_inside(folder, "a" * 5000) is None  # ENAMETOOLONG: refused, not an error
    assert file_inside(folder, "sub/" + "b" * 300) is None
