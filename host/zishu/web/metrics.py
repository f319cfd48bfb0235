"""``GET /metrics``: Prometheus' text exposition format (prometheus-client), behind the same guard
as every route: the app's secret on its own port (``Authorization: Bearer <secret>``), the Local API
key on the local API port. Figures: jobs by type and state, the queue's depth and the loaded models
with their memory (``zishu.jobs.metrics``, read at each scrape), and the image generation
histogram (``zishu.studio.metrics``, this process's). See docs/metrics.md.
"""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from zishu.jobs.metrics import RuntimeCollector
from zishu.studio import metrics as studio_metrics

from .app import runtime

metrics = Blueprint("metrics", __name__)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime().models))
    for collector in studio_metrics.COLLECTORS:
        registry.register(collector)
    return registry


@metrics.get("/metrics")
def exposition():
    """Prometheus text: jobs by type and state, queue depth, loaded models, generation seconds."""
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
