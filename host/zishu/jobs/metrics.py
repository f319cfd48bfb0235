"""Prometheus figures read at each scrape from the job table and the engine cache, so they are true
whichever process ran the jobs:

    zishu_jobs{type, status}                    jobs in the table, by job type and state (a gauge)
    zishu_queue_depth                           jobs waiting to run (PENDING)
    zishu_models_loaded                         models the engine cache holds
    zishu_model_memory_bytes{engine, kind, model, device, memory="ram"|"vram"}
                                                what each loaded model takes, as the cache counts it

``RuntimeCollector(models)`` is a prometheus-client custom collector; ``models`` is the engine
cache (anything with ``loaded()``, as ``zishu.engines.ModelCache``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import peewee
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .records import Job, Status


class RuntimeCollector(Collector):
    def __init__(self, models: Any) -> None:
        self.models = models

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("zishu_jobs", "Jobs in the job table by type and state", labels=["type", "status"])
        query: Any = Job.select(Job.kind, Job.status, peewee.fn.COUNT(Job.id).alias("n")).group_by(Job.kind, Job.status)
        counts: list[tuple[str, str, int]] = list(query.tuples())
        waiting = 0
        for kind, status, n in counts:
            jobs.add_metric([kind, status], n)
            if status == Status.PENDING.value:
                waiting += n
        yield jobs
        yield GaugeMetricFamily("zishu_queue_depth", "Jobs waiting to run (PENDING)", value=waiting)
        loaded = self.models.loaded()
        yield GaugeMetricFamily("zishu_models_loaded", "Models the engine cache holds", value=len(loaded))
        memory = GaugeMetricFamily("zishu_model_memory_bytes", "Memory a loaded model takes, as the engine cache "
                                   "counts it", labels=["engine", "kind", "model", "device", "memory"])
        for entry in loaded:
            for what in ("ram", "vram"):
                memory.add_metric([entry["engine"], entry["kind"], entry["model"], entry["device"], what],
                                  entry[f"{what}_bytes"])
        yield memory
