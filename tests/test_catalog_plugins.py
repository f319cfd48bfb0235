"""Catalog plugins: a real wheel built here, published in a local catalog, installed (after consent)
into ZISHU_HOME/plugins, loaded at the next start, uninstalled; broken ones refused or isolated."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import make_manifest, publish_catalog, write_manifest, zishu

HELLO = '''
from zishu.hookspecs import hookimpl


def hello(ctx, name: str = "world"):
    return f"hello {name}"


@hookimpl
def register_job_types(register):
    register("hello", hello, title=lambda params: "Hello")
'''


def build_wheel(folder: Path, dist: str, module: str, source: str, *, version: str = "1.0.0",
                requires: tuple[str, ...] = (), entry: str = "hello") -> Path:
    """A pure-Python wheel with a correct RECORD, as `pip wheel` would write it."""
    stem = f"{dist.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": source,
        f"{info}/METADATA": meta,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: zishu-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[zishu]\n{entry} = {module}\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    path = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**files, f"{info}/RECORD": "\n".join(record) + "\n"}.items():
            wheel.writestr(name, text)
    return path


def publish_plugin(registry: Path, server, wheel: Path, rid: str, dist: str, *, sha256: str | None = None,
                   entry: str = "hello") -> None:
    body = wheel.read_bytes()
    server.files[f"/files/{wheel.name}"] = body
    data = make_manifest(rid, "plugin", name="Hello plugin",
                         spec={"distribution": dist, "wheel": wheel.name, "entry_point": entry})
    data["versions"][0]["files"] = [{"name": wheel.name, "url": f"{server.url}/files/{wheel.name}",
                                     "sha256": sha256 or hashlib.sha256(body).hexdigest(), "size": len(body)}]
    write_manifest(registry, data)


@pytest.fixture
def catalog(tmp_path, registry, file_server):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    good = build_wheel(wheels, "zishu-hello", "zishu_hello_cat", HELLO)
    publish_plugin(registry, file_server, good, "alice/hello", "zishu-hello")
    needy = build_wheel(wheels, "zishu-needy", "zishu_needy_cat", HELLO, requires=("zishu-no-such-package>=1",),
                        entry="needy")
    publish_plugin(registry, file_server, needy, "alice/needy", "zishu-needy", entry="needy")
    crashy = build_wheel(wheels, "zishu-crashy", "zishu_crashy_cat", "import zishu_no_such_module\n", entry="crashy")
    publish_plugin(registry, file_server, crashy, "alice/crashy", "zishu-crashy", entry="crashy")
    tampered = build_wheel(wheels, "zishu-tampered", "zishu_tampered_cat", HELLO, entry="tampered")
    publish_plugin(registry, file_server, tampered, "alice/tampered", "zishu-tampered", sha256="f" * 64,
                   entry="tampered")
    home = tmp_path / "home"
    env = {**os.environ, "ZISHU_HOME": str(home), "ZISHU_CATALOG": publish_catalog(registry, tmp_path / "catalog")}
    env.pop("ZISHU_QUEUE", None)
    env.pop("ZISHU_LOAD_PLUGINS", None)
    return env, home


def _plugins(env) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(zishu(env, "plugins", "--json").stdout)}


def test_a_catalog_plugin_is_installed_after_consent_loaded_at_start_and_uninstalled(catalog):
    env, home = catalog
    result = zishu(env, "install", "alice/hello", "--yes")
    assert "entry point [zishu] hello = zishu_hello_cat" in result.stderr  # what it declares, from the wheel
    assert "distribution zishu-hello 1.0.0" in result.stderr
    assert (home / "plugins" / "zishu-hello" / "zishu_hello_cat" / "__init__.py").is_file()
    hello = _plugins(env)["hello"]
    assert hello["status"] == "loaded" and "register_job_types" in hello["hooks"]
    assert hello["package"] == "zishu-hello"

    zishu(env, "uninstall", "alice/hello")
    assert not (home / "plugins" / "zishu-hello").exists()
    assert "hello" not in _plugins(env)


def test_declining_consent_installs_nothing(catalog):
    env, home = catalog
    result = subprocess.run([sys.executable, "-m", "zishu.cli", "install", "alice/hello"], env=env, input="n\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Install this plugin?" in result.stderr and "was not installed" in result.stderr
    assert not (home / "plugins" / "zishu-hello").exists()
    assert "alice/hello" not in json.loads(zishu(env, "list", "--json").stdout)


def test_a_missing_dependency_is_named_and_nothing_lands(catalog):
    env, home = catalog
    result = zishu(env, "install", "alice/needy", "--yes", check=False)
    assert result.returncode == 7, result.stderr  # INSTALL_PLAN_FAILED
    assert "zishu-no-such-package>=1 (not installed)" in result.stderr
    assert not (home / "plugins" / "zishu-needy").exists()
    assert "alice/needy" not in json.loads(zishu(env, "list", "--json").stdout)


def test_a_tampered_wheel_is_refused_before_anything_lands(catalog):
    env, home = catalog
    result = zishu(env, "install", "alice/tampered", "--yes", check=False)
    assert result.returncode != 0 and "sha256" in result.stderr
    assert not (home / "plugins").exists() or not any((home / "plugins").iterdir())


def test_a_plugin_that_fails_to_import_is_isolated(catalog):
    env, _home = catalog
    zishu(env, "install", "alice/crashy", "--yes")
    zishu(env, "install", "alice/hello", "--yes")
    listed = _plugins(env)
    assert listed["hello"]["status"] == "loaded"  # the other plugin still loads
    assert listed["crashy"]["status"] == "failed" and listed["crashy"]["package"] == "zishu-crashy"
    assert "zishu_no_such_module" in listed["crashy"]["error"]
    assert zishu(env, "list").returncode == 0  # the host runs
