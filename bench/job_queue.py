"""Job queue figures for the in-app consumer (SqliteHuey in queue.db, job rows in zishu.db).

    python bench/job_queue.py [--jobs 1000] [--latency-samples 300] [--workers 2]

Prints enqueue→start latency p50/p99 (from just before ``submit`` to the first line of the job's
function: the job row insert, the enqueue, the consumer waking, the dequeue and the PENDING→RUNNING
update) over jobs submitted one at a time, then jobs per second for a burst of no-op jobs
submitted at once, from the first submit to the last job recorded SUCCESS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "host"))

from zishu.db import open_database
from zishu.jobs import Job, JobQueue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        open_database(home / "zishu.db")
        queue = JobQueue(home, url="")
        started: dict[int, float] = {}
        ran = threading.Event()

        def noop(ctx, n: int = 0):
            started[n] = time.perf_counter()
            ran.set()
            return n

        queue.register("noop", noop)
        queue.start_consumer(workers=args.workers)
        time.sleep(1.0)  # let the consumer settle into its idle wait

        latencies = []
        for i in range(args.latency_samples):
            ran.clear()
            before = time.perf_counter()
            queue.submit("noop", {"n": -1 - i})
            ran.wait(10)
            latencies.append((started[-1 - i] - before) * 1000)
            time.sleep(0.02)  # idle between jobs, as between a user's clicks

        t0 = time.perf_counter()
        ids = [queue.submit("noop", {"n": i}).id for i in range(args.jobs)]
        while Job.select().where(Job.id.in_(ids), Job.status == "SUCCESS").count() < len(ids):
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        queue.stop_consumer()

    cuts = statistics.quantiles(latencies, n=100)
    print(f"in-app SqliteHuey consumer, {args.workers} worker threads")
    print(f"enqueue→start latency over {len(latencies)} jobs: p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {cuts[98]:.1f} ms, max {max(latencies):.1f} ms")
    print(f"throughput: {args.jobs} no-op jobs in {elapsed:.2f} s = {args.jobs / elapsed:.0f} jobs/s")


if __name__ == "__main__":
    main()
