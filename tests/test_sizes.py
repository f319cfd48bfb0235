"""One byte-size formatter in IEC units (zishu.sizes), and its one JavaScript mirror agreeing with it."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from zishu.sizes import byte_size

ROOT = Path(__file__).resolve().parents[1]
SIZES_JS = ROOT / "host" / "zishu" / "web" / "static" / "sizes.js"


@pytest.mark.parametrize(("n", "shown"), [
    (None, "—"), (0, "0 B"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1280, "1.3 KiB"),  # 1.25: half up
    (1587, "1.5 KiB"), (123_456, "120.6 KiB"), (1_048_575, "1.0 MiB"), (8 * 2**20, "8.0 MiB"),
    (int(4.8 * 2**20), "4.8 MiB"), (3 * 2**30, "3.0 GiB"), (10**12, "931.3 GiB"), (2**40, "1.0 TiB"),
    (10**18, "888.2 PiB"), (2**60, "1024.0 PiB"), (-2048, "-2.0 KiB"), (1536.9, "1.5 KiB"),
])
def test_byte_size_in_iec_units(n, shown):
    assert byte_size(n) == shown


def numbers() -> list[int]:
    rng = random.Random(12)
    edges = [0, 1, 1023, 1024, 1025, 1126, 1127, 1280, 10_239, 10_240, 1_048_575, 1_048_576]
    edges += [1024**p * k // 10 + d for p in range(1, 5) for k in (5, 15, 99, 10235, 10236) for d in (-1, 0, 1)]
    return edges + [rng.randrange(0, 2**48) for _ in range(300)] + [rng.randrange(0, 2**20) for _ in range(300)]


def test_the_javascript_mirror_gives_the_same_labels(tmp_path):
    """The app's JS formats sizes with ``formatBytes`` (static/sizes.js); it must say what Python says."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; run `make setup` (Node 20 is needed for the JS tests)")
    module = tmp_path / "sizes.mjs"  # .mjs: an ES module whatever package.json says
    module.write_text(SIZES_JS.read_text(encoding="utf-8"), encoding="utf-8")
    values = numbers()
    script = (f"import {{ formatBytes }} from {json.dumps(module.as_uri())};\n"
              f"const values = {json.dumps(values)};\n"
              "console.log(JSON.stringify([...values.map(formatBytes), formatBytes(null), formatBytes(undefined)]));\n")
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [byte_size(n) for n in values] + ["—", "—"]


def test_the_app_imports_the_one_mirror():
    static = SIZES_JS.parent
    app_js = (static / "app.js").read_text(encoding="utf-8")
    assert 'export { formatBytes } from "./sizes.js"' in app_js
    for js in static.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        assert js.name == "sizes.js" or "function formatBytes" not in text, js
        assert "KB" not in text and '"MB"' not in text, js
