"""The studio's Prometheus figures, kept in the process that draws: how long image jobs take.

``GENERATION_SECONDS`` is a histogram of the seconds an ``image`` job spent making its pictures
(model load included when the job had to load it; answers from the result cache are not counted),
observed by the job (``studio.jobs``) through ``observe``. ``IMAGES`` counts the pictures made. Both
live in this process, as Prometheus expects: ``/metrics`` of the app shows what its own workers drew;
a separate ``zishu worker`` process keeps its own. Neither is in prometheus-client's global registry:
``web/metrics.py`` collects them with the job table's and the engine cache's figures.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# seconds; a tiny CPU draw takes well under a second, SDXL at 1024² on a GPU 2–5 s, on a CPU minutes
BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 21, 34, 60, 120, 300, 600)

GENERATION_SECONDS = Histogram("zishu_image_generation_seconds",
                               "Seconds an image job spent drawing its pictures (cached answers not counted)",
                               buckets=BUCKETS, registry=None)
IMAGES = Counter("zishu_images_generated", "Pictures the studio drew (cached answers not counted)", registry=None)


def observe(seconds: float, images: int) -> None:
    """One image job drew ``images`` pictures in ``seconds``."""
    GENERATION_SECONDS.observe(seconds)
    IMAGES.inc(images)


COLLECTORS = (GENERATION_SECONDS, IMAGES)
