"""The local server under load: bursts of concurrent requests, and API latency while it works.

    .venv/bin/python bench/server_load.py [--size 512M] [--requests 1000]

Starts ``zishu serve`` (its own process, in-app job consumer) over a temporary home with a tiny
random GGUF character (acme/talker) and a catalog whose one model file a threaded loopback
server holds in memory and serves at full speed. Everything stays on 127.0.0.1; every loop is
bounded. It prints, each beside its target:

* 200 concurrent ``GET /api/health`` and 50 concurrent ``POST /api/open``, each released at once
  from its own thread: answers other than 200, connection resets and timeouts (target: none);
* the latency of ``--requests`` API GETs (``/api/jobs``, ``/api/library``, ``/api/health``, in
  turn, from 4 client threads) while an install job downloads the ``--size`` file and LLM turns
  (``/v1/chat/completions``, 200 tokens each) run one after another: p50, p99 and max (target:
  p99 under 500 ms), with how much of the download and how many turns happened meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tools"), str(ROOT / "tests")]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "host"), str(ROOT / "plugins"), str(ROOT / "tools"),
                                            os.environ.get("PYTHONPATH", "")])

import requests  # noqa: E402

from conftest import (  # noqa: E402
    AppProcess,
    FileServer,
    install_resource,
    make_manifest,
    publish_catalog,
    serve_file,
    write_manifest,
)
from tiny_gguf import write_tiny_gguf  # noqa: E402

TALKER = {"persona": "You are {{char}}.", "greetings": ["Hi."], "llm": {"model": "acme/talker"}}
API_GETS = ("/api/jobs", "/api/library", "/api/health")
P99_TARGET_MS = 500


def size_arg(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(float(text[:-1]) * units[text[-1].upper()]) if text[-1].upper() in units else int(text)


def burst(count: int, call) -> tuple[int, list[str]]:
    """``call()`` from ``count`` threads released at once: how many answered 200, and the rest."""
    start, results = threading.Barrier(count), [""] * count

    def one(i: int) -> None:
        start.wait()
        try:
            status = call()
            results[i] = "" if status == 200 else f"HTTP {status}"
        except requests.RequestException as e:
            results[i] = type(e).__name__ + (": reset" if "reset" in str(e).lower() else "")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results.count(""), [r for r in results if r]


def make_home(tmp: Path, files: FileServer, size: int) -> dict:
    """The home (tiny talker character), the catalog (one model of ``size`` bytes), the env."""
    home, registry = tmp / "home", tmp / "registry_index"
    (registry / "resources").mkdir(parents=True)
    (registry / "retired.yaml").write_text("retired: []\n")
    (registry / "policy.yaml").write_text((ROOT / "registry_index" / "policy.yaml").read_text())
    big = make_manifest("zishu/big-model", kind="model", name="Big Model", tags=["llm"])
    big["versions"][0]["files"] = [serve_file(files, "big.bin", size, seed=1)]
    write_manifest(registry, big)
    gguf = write_tiny_gguf(tmp / "talker.gguf", dim=256, layers=4, heads=4, ffn=512, context=2048)
    install_resource(home, "acme/talker", {"format": "gguf", "role": "llm"}, files={"m.gguf": gguf})
    install_resource(home, "acme/mei", TALKER, kind="character", name="Mei")
    env = {**os.environ, "ZISHU_HOME": str(home), "ZISHU_CATALOG": publish_catalog(registry, tmp / "catalog")}
    env.pop("ZISHU_QUEUE", None)
    return env


def latency_under_work(app: AppProcess, count: int) -> dict:
    """API GET latencies while a download and LLM turns run (see the module docstring)."""
    stop, turns = threading.Event(), [0]

    def turn() -> None:
        answer = requests.post(app.url + "/v1/chat/completions", headers={"X-Zishu-Token": app.secret}, timeout=300,
                               json={"model": "acme/mei", "max_tokens": 200,
                                     "messages": [{"role": "user", "content": "Tell me a story."}]})
        answer.raise_for_status()

    def talk() -> None:
        while not stop.is_set() and turns[0] < 1000:
            turn()
            turns[0] += 1

    turn()  # the first one loads the model and the character's memory
    job = app.api("POST", "/api/installs", json={"id": "zishu/big-model"}).json()["job"]["id"]

    talker = threading.Thread(target=talk, daemon=True)
    talker.start()
    while app.api("GET", f"/api/jobs/{job}").json()["job"]["status"] == "QUEUED":
        time.sleep(0.01)
    took: list[float] = []
    failed: list[str] = []
    lock = threading.Lock()

    def client(share: int) -> None:
        session = requests.Session()
        session.headers["X-Zishu-Token"] = app.secret
        for i in range(share):
            begin = time.perf_counter()
            try:
                answer = session.get(app.url + API_GETS[i % len(API_GETS)], timeout=60)
                why = "" if answer.status_code == 200 else f"HTTP {answer.status_code}"
            except requests.RequestException as e:
                why = type(e).__name__
            with lock:
                took.append(time.perf_counter() - begin)
                if why:
                    failed.append(why)

    clients = [threading.Thread(target=client, args=(count // 4,)) for _ in range(4)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    state = app.api("GET", f"/api/jobs/{job}").json()["job"]
    stop.set()
    talker.join(120)
    took.sort()
    return {"n": len(took), "failed": failed, "p50": statistics.median(took) * 1000,
            "p99": took[max(0, round(0.99 * len(took)) - 1)] * 1000, "max": took[-1] * 1000,
            "job": state["status"], "turns": turns[0], "progress": state.get("progress")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=size_arg, default="512M", help="the downloaded file (default 512M)")
    parser.add_argument("--requests", type=int, default=1000, help="API GETs timed under load (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FileServer() as files:
        env = make_home(Path(tmp), files, args.size)
        with AppProcess(env) as app:
            print(f"zishu serve on {app.url}; {os.cpu_count()} CPU cores")
            ok, bad = burst(200, lambda: requests.get(app.url + "/api/health", headers={"X-Zishu-Token": app.secret},
                                                      timeout=60).status_code)
            print(f"200 concurrent GETs:  {ok} answered 200, {len(bad)} failed {sorted(set(bad))} (target: 0 failed)")
            ok, bad = burst(50, lambda: requests.post(app.url + "/api/open", json={"url": "zishu://resource/acme/mei"},
                                                      headers={"X-Zishu-Token": app.secret}, timeout=60).status_code)
            print(f"50 concurrent POSTs:  {ok} answered 200, {len(bad)} failed {sorted(set(bad))} (target: 0 failed)")
            found = latency_under_work(app, args.requests)
            print(f"{found['n']} API GETs during a {args.size >> 20} MiB download and LLM turns: "
                  f"p50 {found['p50']:.1f} ms, p99 {found['p99']:.1f} ms (target < {P99_TARGET_MS} ms), "
                  f"max {found['max']:.1f} ms; {len(found['failed'])} failed")
            print(f"  meanwhile: {found['turns']} LLM turns; the download was {found['job']} "
                  f"(progress {found['progress']}) when the last GET was answered")


if __name__ == "__main__":
    main()
