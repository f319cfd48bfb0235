"""``GET /metrics`` (issue 15, item 8): Prometheus' text format, parsed back with prometheus-client's
own parser, on a real server (``studio_server``) whose in-app worker draws with the tiny SD
pipeline: jobs by type and state, the queue's depth, the generation histogram, the loaded model
with its memory; behind the secret on the app's port and the key on the local API port."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from studio_server import install_tiny_studio, serve
from tiny_diffusers import write_tiny_lora, write_tiny_sd

SMALL = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("metrics-models")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "lora": write_tiny_lora(folder / "lora", sd).parent}


def samples(text: str) -> dict[tuple, float]:
    """Every sample as {(name, frozenset of labels): value}, read by prometheus-client's parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_jobs_the_queue_the_histogram_and_loaded_models(runtime, tiny):
    from zishu.web.app import create_app

    install_tiny_studio(runtime.home, tiny)
    waiting = runtime.jobs.submit("image", {"prompt": "a cat", **SMALL, "seed": 1})
    dropped = runtime.jobs.submit("image", {"prompt": "a dog", **SMALL, "seed": 2})
    runtime.jobs.cancel(dropped.id)  # no worker yet: one waits, one is cancelled
    local = create_app(runtime, "s3cret").test_client()
    before = local.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert before.status_code == 200 and before.mimetype == "text/plain"
    early = samples(before.get_data(as_text=True))
    assert value(early, "zishu_jobs", type="image", status="PENDING") == 1
    assert value(early, "zishu_jobs", type="image", status="CANCELLED") == 1
    assert value(early, "zishu_queue_depth") == 1 and value(early, "zishu_models_loaded") == 0
    drawn_before = value(early, "zishu_image_generation_seconds_count")
    images_before = value(early, "zishu_images_generated_total")

    served, server = serve(runtime)  # its worker takes the waiting job
    try:
        deadline = time.monotonic() + 300
        while runtime.jobs.get(waiting.id).status in ("PENDING", "RUNNING"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert runtime.jobs.get(waiting.id).status == "SUCCESS"
        runtime.jobs.submit("image", {"prompt": "a cat", **SMALL, "seed": 1})  # the same: from the cache
        scraped = {}
        for url, secret in ((served.url, served.secret), (served.api_url, served.key)):
            got = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
            assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/plain; version=")
            scraped[url] = samples(got.text)
        assert requests.get(f"{served.url}/metrics", timeout=30).status_code == 403  # no secret
        assert requests.get(f"{served.api_url}/metrics", timeout=30).status_code == 401  # no key
    finally:
        server.stop()
    late = scraped[served.api_url]
    assert value(late, "zishu_jobs", type="image", status="CANCELLED") == 1
    assert value(late, "zishu_jobs", type="image", status="PENDING") + value(
        late, "zishu_jobs", type="image", status="RUNNING") + value(
        late, "zishu_jobs", type="image", status="SUCCESS") == 2
    assert value(late, "zishu_image_generation_seconds_count") >= drawn_before + 1
    assert value(late, "zishu_image_generation_seconds_sum") > 0
    assert value(late, "zishu_image_generation_seconds_bucket", le="+Inf") == value(
        late, "zishu_image_generation_seconds_count")
    assert value(late, "zishu_images_generated_total") >= images_before + 1
    [loaded] = runtime.models.loaded()
    assert value(late, "zishu_models_loaded") == 1
    labels = {"engine": loaded["engine"], "kind": "image", "model": loaded["model"], "device": loaded["device"]}
    assert value(late, "zishu_model_memory_bytes", **labels, memory="ram") == loaded["ram_bytes"] > 0
    assert value(scraped[served.url], "zishu_models_loaded") == 1  # the same figures on the app's own port
