"""OpenAI's ``POST /v1/images/generations`` (issue 15, item 7) driven by the official ``openai`` client
against a real server (``studio_server``) with the real diffusers engine on a tiny random SD
pipeline: b64_json and url answers, size, n, the model, Zishu's own fields through ``extra_body``,
and errors in OpenAI's shape naming the ``param``."""

from __future__ import annotations

import base64
import io

import openai
import pytest
import requests
from PIL import Image

from studio_server import install_tiny_studio, serve
from tiny_diffusers import write_tiny_lora, write_tiny_sd
from zishu.jobs import records
from zishu.studio.metadata import read_parameters


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openai-image-models")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "lora": write_tiny_lora(folder / "lora", sd).parent}


@pytest.fixture
def served(runtime, tiny):
    install_tiny_studio(runtime.home, tiny)
    found, server = serve(runtime)
    yield found
    server.stop()


@pytest.fixture
def client(served):
    return openai.OpenAI(base_url=f"{served.api_url}/v1", api_key=served.key, timeout=300, max_retries=0)


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_b64_json_pictures_of_the_asked_size_and_number_with_their_parameters(client, served):
    answer = client.images.generate(model="dall-e-3", prompt="a red cat", n=2, size="80x64",
                                    response_format="b64_json", extra_body={"seed": 11, "steps": 2})
    assert answer.created > 0 and len(answer.data) == 2
    images = [picture(base64.b64decode(item.b64_json)) for item in answer.data]
    assert [i.size for i in images] == [(80, 64), (80, 64)]
    assert [read_parameters(i.info["parameters"])["Seed"] for i in images] == ["11", "12"]
    assert read_parameters(images[0].info["parameters"])["Model"] == "tiny-sd"  # dall-e-3: the studio's model
    assert answer.data[0].revised_prompt == "a red cat"
    [job] = records.recent()  # an ordinary image job, shown in the Jobs panel
    assert job.kind == "image" and job.status == "SUCCESS"
    listed = client.models.retrieve("alice/tiny-sd")  # /v1/models says which models draw
    assert listed.zishu == {"kind": "model", "role": "image", "endpoints": ["/v1/images/generations"]}


def test_url_answers_point_at_this_server_behind_the_key(client, served):
    answer = client.images.generate(model="alice/tiny-sd", prompt="a blue dog", size="64x64",
                                    extra_body={"steps": 1, "seed": 2})
    [item] = answer.data
    assert item.b64_json is None and item.url.startswith(f"{served.api_url}/v1/images/files/")
    assert requests.get(item.url, timeout=30).status_code == 401  # the key guards it like all of /v1
    got = requests.get(item.url, headers={"Authorization": f"Bearer {served.key}"}, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/png"
    assert picture(got.content).size == (64, 64)
    relative = item.url.split("/v1/images/files/", 1)[1]
    assert (served.home / "studio" / relative).read_bytes() == got.content  # the gallery's own file
    # on the app's own port: its secret, and a URL on that port
    window = openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.secret, timeout=300, max_retries=0)
    [again] = window.images.generate(prompt="a blue dog", size="64x64", extra_body={"steps": 1, "seed": 2}).data
    assert again.url == f"{served.url}/v1/images/files/{relative}"  # the same request: the cached picture
    for bad in ("../zishu.db", "2026-01-01/none.png"):
        missing = requests.get(f"{served.api_url}/v1/images/files/{bad}",
                               headers={"Authorization": f"Bearer {served.key}"}, timeout=30)
        assert missing.status_code == 404


@pytest.mark.parametrize("arguments,param,status,message", [
    ({"size": "100x100"}, "size", 400, "size: must be a multiple of 8, got 100"),
    ({"size": "large"}, "size", 400, 'size must be "WIDTHxHEIGHT"'),
    ({"size": "4096x4096"}, "size", 400, "size: must be from 64 to 2048"),
    ({"n": 9}, "n", 400, "less than or equal to 8"),
    ({"n": 0}, "n", 400, "greater than or equal to 1"),
    ({"response_format": "gif"}, "response_format", 400, "'url' or 'b64_json'"),
    ({"model": "acme/none"}, "model", 404, "there is no image model 'acme/none' here"),
    ({"prompt": "a nude figure"}, "prompt", 400, "safe mode: the prompt contains nude"),
    ({"prompt": " "}, "prompt", 400, "must not be empty"),
    ({"extra_body": {"scheduler": "Nope"}}, "scheduler", 400, "'Nope' is not one of"),
])
def test_errors_are_openai_shaped_naming_the_param(client, arguments, param, status, message):
    asked = {"prompt": "a cat", "size": "64x64", **arguments}
    with pytest.raises(openai.APIStatusError) as refused:
        client.images.generate(**asked)
    error = refused.value
    assert error.status_code == status and error.body["param"] == param and message in error.body["message"], \
        error.body
    assert error.body["type"] == "invalid_request_error"
    if status == 404:
        assert error.body["code"] == "model_not_found"
    assert records.recent() == []  # nothing was queued
