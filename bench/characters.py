"""Character list figures at 1,000 characters, and what big cards cost.

    python bench/characters.py [--count 1000] [--big 5] [--repeat 30]

Builds ``--count`` characters with real saves (``create_character``, each a version folder, its
registry record and its index entry) in a temporary ZISHU_HOME, ``--big`` of them imported from
SillyTavern cards at the size limits (2,000 lorebook entries, about 4.5 MB of JSON each), then
times listing them: through the service (``list_characters``) with the index in place, with the
index removed (every manifest read, as before the index existed), and through ``GET
/api/characters`` on a real server on 127.0.0.1. Last, the import of one card at the limits and
the refusal of the attack run's card (100,000 lorebook entries, 4.3 MB). Each figure is printed
beside its target; the exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "host"))

from zishu.companion import characters as chars
from zishu.companion.character_index import index_file
from zishu.errors import CardError
from zishu.web.server import start_app

TARGET_LIST_MS = 100  # listing 1,000 characters, service or HTTP, median
TARGET_REFUSE_MS = 1000  # refusing the 100k-entry card


def big_card(name: str, entries: int, content: str) -> bytes:
    book = {"entries": [{"keys": [f"k{i}"], "content": content} for i in range(entries)]}
    card = {"spec": "chara_card_v2", "spec_version": "2.0",
            "data": {"name": name, "description": f"{name} knows a great deal.", "character_book": book}}
    return json.dumps(card).encode()


def timed(work, repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` runs of ``work()``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return times


def row(what: str, times: list[float], target: float | None) -> bool:
    median = statistics.median(times)
    p95 = sorted(times)[max(0, int(len(times) * 0.95) - 1)]
    ok = target is None or median < target
    goal = f"target < {target:.0f} ms {'ok' if ok else 'MISSED'}" if target is not None else ""
    print(f"  {what:<44} median {median:8.1f} ms   p95 {p95:8.1f} ms   {goal}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--big", type=int, default=5, help="how many of them come from cards at the limits")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_app(Path(tmp) / "home", consumer=False)
        runtime = server.runtime
        try:
            start = time.perf_counter()
            for i in range(args.count - args.big):
                chars.create_character(runtime, {
                    "name": f"Character {i}", "persona": f"You are {{{{char}}}}, character number {i}.",
                    "greetings": [f"Hello, {{{{user}}}}! I am number {i}."], "tags": ["bench"],
                })
            for i in range(args.big):
                chars.import_card(runtime, big_card(f"Lore Keeper {i}", 2000, "lore " * 440), f"keeper-{i}.json")
            built = time.perf_counter() - start
            manifests = sum(p.stat().st_size for p in (runtime.home / "resources").rglob("manifest.json"))
            print(f"{args.count} characters saved in {built:.1f} s ({manifests / 2**20:.1f} MiB of manifests, "
                  f"index {index_file(runtime.registry).stat().st_size / 1024:.0f} KiB)")

            ok = True
            print("listing them:")
            assert len(chars.list_characters(runtime)) == args.count
            ok &= row("list_characters (index)", timed(lambda: chars.list_characters(runtime), args.repeat),
                      TARGET_LIST_MS)

            def without_index() -> None:
                index_file(runtime.registry).unlink()
                chars.list_characters(runtime)

            row("list_characters (index removed: manifests)", timed(without_index, max(3, args.repeat // 10)), None)

            tracemalloc.start()
            chars.list_characters(runtime)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"  {'memory allocated by one listing (peak)':<44} {peak / 2**20:8.1f} MiB")

            request = urllib.request.Request(f"{server.url}api/characters", headers={"X-Zishu-Token": server.secret})

            def over_http() -> bytes:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.read()

            assert len(json.loads(over_http())["characters"]) == args.count  # checked once, not timed
            ok &= row("GET /api/characters", timed(over_http, args.repeat), TARGET_LIST_MS)

            print("big cards:")
            limits = big_card("At The Limits", 2000, "lore " * 440)
            row(f"import a card at the limits ({len(limits) / 2**20:.1f} MiB)",
                timed(lambda: chars.import_card(runtime, limits, "limits.json"), 1), None)
            attack = big_card("Attack", 100_000, "x")

            def refuse() -> None:
                try:
                    chars.import_card(runtime, attack, "attack.json")
                except CardError:
                    return
                raise AssertionError("the 100k-entry card was accepted")

            ok &= row(f"refuse 100,000 lorebook entries ({len(attack) / 2**20:.1f} MiB)", timed(refuse, 3),
                      TARGET_REFUSE_MS)
        finally:
            server.stop()
            runtime.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
