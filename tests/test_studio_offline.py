"""The studio works with no network (issue 15, item 9): ``zishu image`` draws with an installed model
inside an empty network namespace (``unshare -rn``: a user namespace, so no root is needed, and a
network namespace with only a loopback that is down). Nothing is downloaded or looked up: no model
hub, no catalog, no DNS. Where the kernel or a sandbox refuses namespaces, the test is skipped with
the reason ``unshare`` gave."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from studio_server import install_tiny_studio
from tiny_diffusers import write_tiny_lora, write_tiny_sd
from zishu.studio.metadata import read_parameters

UNSHARE = ["unshare", "--user", "--map-root-user", "--net"]


def offline(command: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*UNSHARE, *command], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def namespaces():
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    tried = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=30)
    if tried.returncode != 0:
        pytest.skip(f"this machine refuses a user + network namespace: {tried.stderr.strip()}")


def test_zishu_image_draws_inside_an_empty_network_namespace(namespaces, tmp_path):
    home = tmp_path / "home"
    models = tmp_path / "models"
    sd = write_tiny_sd(models / "sd")
    install_tiny_studio(home, {"sd": sd, "lora": write_tiny_lora(models / "lora", sd).parent})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(ZISHU_HOME=str(home), HF_HOME=str(tmp_path / "hf"))  # an empty hub cache: nothing to fall back on
    env.pop("ZISHU_QUEUE", None)
    # first: the namespace really has no network (no route, no name lookup)
    probe = offline([sys.executable, "-c", "import socket\n"
                     "for target in (('1.1.1.1', 443), ('huggingface.co', 443)):\n"
                     "    try:\n"
                     "        socket.create_connection(target, timeout=5)\n"
                     "    except OSError as e:\n"
                     "        print('refused', type(e).__name__)\n"
                     "    else:\n"
                     "        print('connected')\n"], env)
    lines = probe.stdout.splitlines()
    assert probe.returncode == 0 and len(lines) == 2 and all(line.startswith("refused") for line in lines), probe
    out = tmp_path / "out" / "cat.png"
    drawn = offline([sys.executable, "-m", "zishu.cli", "image", "a cat <offline>", "--model", "alice/tiny-sd",
                     "--width", "64", "--height", "64", "--steps", "2", "--seed", "5", "--out", str(out)], env)
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout.split() == [str(out)]
    with Image.open(out) as picture:
        assert picture.size == (64, 64)
        read = read_parameters(picture.info["parameters"])
    assert read["Seed"] == "5" and read["Model"] == "tiny-sd" and read["Prompt"] == "a cat <offline>"
    assert list((home / "studio").rglob("*.png"))  # kept in the gallery too
