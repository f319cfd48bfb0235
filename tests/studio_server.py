"""A real Zishu server in this process for the studio's tool APIs (A1111 ``/sdapi``, OpenAI
``/v1/images``, ``/metrics``): the runtime's in-app worker, the app's own port (its secret) and the
local API listener on a port of its own (its key), with a tiny random SD pipeline installed as the
catalog model ``alice/tiny-sd`` and a LoRA for it, ``alice/cats``."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from conftest import install_resource

KEY = "zk-studio-test-key"
SD15 = "runwayml/stable-diffusion-v1-5"


@dataclass
class Served:
    url: str  # the app's own port (its secret)
    api_url: str  # the local API listener (the key)
    secret: str
    key: str
    runtime: object
    home: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_tiny_studio(home: Path, tiny: dict[str, Path]) -> None:
    install_resource(home, "alice/tiny-sd", {"format": "diffusers", "role": "image", "base_model": SD15},
                     files={p.name: p for p in tiny["sd"].iterdir()})  # the pipeline's folders at the top
    install_resource(home, "alice/cats", {"target": "image", "base_model": SD15}, kind="lora",
                     files={"lora": tiny["lora"]})


def serve(runtime) -> tuple[Served, object]:
    """Start the server for ``runtime`` (with one in-app worker); returns it and what stops it."""
    from zishu.web.security import ApiAccess
    from zishu.web.server import AppServer

    runtime.jobs.start_consumer(1)
    server = AppServer(runtime, api=ApiAccess(key=KEY), api_port=free_port()).start()
    assert server.api_url, server.api_error
    return Served(server.url.rstrip("/"), server.api_url, server.secret, KEY, runtime, runtime.home), server
