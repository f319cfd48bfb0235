"""The AUTOMATIC1111-compatible API (issue 15, item 7) on a real server (``studio_server``) with the
real diffusers engine on a tiny random SD pipeline: requests shaped exactly as SillyTavern's image
generation extension sends them to an "SD Web UI" (auto1111) backend, a plain ``requests`` A1111
client, the running job's progress and interrupt, and each refusal naming A1111's field.

SillyTavern's shapes are read from SillyTavern/SillyTavern at ba6f7b7a (2024-09-28):
``src/endpoints/stable-diffusion.js`` (the server side that calls the backend: routes ``/ping``,
``/samplers``, ``/models``, ``/get-model``, ``/set-model``, ``/upscalers``, ``/schedulers``, ``/vaes``,
``/generate``; every call carries ``Authorization: getBasicAuthHeader(auth)``, i.e. ``Basic
base64(auth)`` with the user's "user:password" text) and
``public/scripts/extensions/stable-diffusion/index.js`` (``generateAutoImage``: the txt2img body,
which the server forwards whole, its own ``url`` and ``auth`` fields included).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import requests
from PIL import Image

from studio_server import install_tiny_studio, serve
from tiny_diffusers import write_tiny_lora, write_tiny_sd
from zishu.jobs import records
from zishu.studio.metadata import read_parameters

TITLE = "alice/tiny-sd@1.0.0"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdapi-models")
    sd = write_tiny_sd(folder / "sd")
    return {"sd": sd, "lora": write_tiny_lora(folder / "lora", sd).parent}


@pytest.fixture
def served(runtime, tiny):
    install_tiny_studio(runtime.home, tiny)
    found, server = serve(runtime)
    yield found
    server.stop()


def basic(auth: str) -> dict:
    """SillyTavern's ``getBasicAuthHeader(auth)`` (src/util.js): ``Basic`` + base64 of the auth text."""
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def sillytavern_get(served, path: str, auth: str) -> requests.Response:
    """What stable-diffusion.js's connect routes send: ``fetch(url, {method: 'GET', headers:
    {'Authorization': getBasicAuthHeader(request.body.auth)}})`` with ``url.pathname`` set."""
    return requests.get(f"{served.api_url}{path}", headers=basic(auth), timeout=60)


def generate_auto_image_body(served, auth: str, prompt: str, **settings) -> dict:
    """index.js ``generateAutoImage``'s body, as ``/api/sd/generate`` forwards it to ``/sdapi/v1/txt2img``
    (``...getSdRequestBody()`` puts ``url`` and ``auth`` in it; ``seed`` is left out when it is -1, and
    ``sd_vae`` when no VAE is chosen: JSON.stringify drops undefined)."""
    body = {"url": served.api_url, "auth": auth, "prompt": prompt,
            "negative_prompt": "lowres, bad anatomy, bad hands, text, error, cropped, worst quality, low quality",
            "sampler_name": "DDIM", "steps": 3, "cfg_scale": 7, "width": 64, "height": 64,
            "restore_faces": False, "enable_hr": False, "hr_upscaler": "Latent", "hr_scale": 2.0,
            "denoising_strength": 0.7, "hr_second_pass_steps": 0,
            "override_settings": {"CLIP_stop_at_last_layers": 1}, "override_settings_restore_afterwards": True,
            "clip_skip": 1, "save_images": True, "send_images": True, "do_not_save_grid": False,
            "do_not_save_samples": False}
    body.update(settings)
    return body


def png(data: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "PNG"
    return image


def test_sillytavern_connects_lists_and_sets_the_model_with_the_key_as_basic_auth(served):
    auth = f"zishu:{served.key}"  # SillyTavern's "SD Web UI auth" field: user:password
    assert sillytavern_get(served, "/sdapi/v1/options", auth).status_code == 200  # /ping
    assert sillytavern_get(served, "/sdapi/v1/options", auth).json()["sd_model_checkpoint"] == TITLE  # /get-model
    samplers = [x["name"] for x in sillytavern_get(served, "/sdapi/v1/samplers", auth).json()]  # /samplers
    assert {"DDIM", "Euler a", "DPM++ 2M", "DPM++ 2M Karras"} <= set(samplers)
    models = [{"value": x["title"], "text": x["title"]}  # /models maps x.title
              for x in sillytavern_get(served, "/sdapi/v1/sd-models", auth).json()]
    assert models == [{"value": TITLE, "text": TITLE}]
    upscalers = [x["name"] for x in sillytavern_get(served, "/sdapi/v1/upscalers", auth).json()]
    latent = [x["name"] for x in sillytavern_get(served, "/sdapi/v1/latent-upscale-modes", auth).json()]
    assert upscalers == ["None"] and latent == []
    assert [x["name"] for x in sillytavern_get(served, "/sdapi/v1/schedulers", auth).json()] == ["automatic", "karras"]
    assert [x["model_name"] for x in sillytavern_get(served, "/sdapi/v1/sd-vae", auth).json()] == []
    # /set-model: POST options {sd_model_checkpoint}, then polls progress until progress 0 and job_count 0
    set_model = requests.post(f"{served.api_url}/sdapi/v1/options", data=json.dumps({"sd_model_checkpoint": TITLE}),
                              headers={"Content-Type": "application/json", **basic(auth)}, timeout=60)
    assert set_model.status_code == 200
    state = sillytavern_get(served, "/sdapi/v1/progress", auth).json()
    assert state["progress"] == 0.0 and state["state"]["job_count"] == 0
    from zishu import settings

    assert settings.load().studio_model == TITLE
    # the key only: a wrong password, SillyTavern's empty auth field, or the window's secret are refused
    for wrong in (f"zishu:{served.key}x", "", f"zishu:{served.secret}"):
        refused = sillytavern_get(served, "/sdapi/v1/options", wrong)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "INVALID_API_KEY"
    # on the app's own port the secret works the same way (Basic or Bearer), and nothing else does
    assert requests.get(f"{served.url}/sdapi/v1/sd-models", headers=basic(f"x:{served.secret}"),
                        timeout=30).status_code == 200
    assert requests.get(f"{served.url}/sdapi/v1/sd-models", headers={"Authorization": f"Bearer {served.secret}"},
                        timeout=30).status_code == 200
    assert requests.get(f"{served.url}/sdapi/v1/sd-models", headers=basic(auth), timeout=30).status_code == 403
    # Basic auth counts on /sdapi alone
    assert requests.get(f"{served.api_url}/v1/models", headers=basic(auth), timeout=30).status_code == 401


def test_sillytavern_generate_draws_a_png_with_a1111_parameters(served):
    auth = f"zishu:{served.key}"
    body = generate_auto_image_body(served, auth, "a red cat, masterpiece", sampler_name="DPM++ 2M",
                                    scheduler="karras", seed=1234)
    answer = requests.post(f"{served.api_url}/sdapi/v1/txt2img", data=json.dumps(body),  # /generate
                           headers={"Content-Type": "application/json", **basic(auth)}, timeout=300)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    picture = png(data["images"][0])  # index.js: return { format: 'png', data: data.images[0] }
    assert picture.size == (64, 64)
    read = read_parameters(picture.info["parameters"])
    assert read["Prompt"] == "a red cat, masterpiece" and read["Sampler"] == "DPM++ 2M Karras"
    assert (read["Seed"], read["Steps"], read["CFG scale"], read["Size"]) == ("1234", "3", "7", "64x64")
    assert data["parameters"]["prompt"] == "a red cat, masterpiece"  # the payload, echoed as A1111 does
    info = json.loads(data["info"])
    assert info["all_seeds"] == [1234] and info["sampler_name"] == "DPM++ 2M Karras" and info["steps"] == 3
    assert info["infotexts"] == [picture.info["parameters"]]
    assert info["zishu"]["ignored"] == []  # hr_upscaler, hr_scale … ask for nothing while enable_hr is off
    job = served.runtime.jobs.get(info["zishu"]["job"]).as_dict()  # an ordinary image job, in the Jobs panel
    assert job["kind"] == "image" and job["status"] == "SUCCESS" and job["params"]["scheduler"] == "DPM++ 2M Karras"


def test_a_plain_a1111_client_draws_a_batch_with_a_lora_tag_and_img2img(served):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {served.key}"
    base = f"{served.api_url}/sdapi/v1"
    payload = {"prompt": "a cat on a mat <lora:cats:0.6>", "negative_prompt": "dogs", "seed": 7, "steps": 2,
               "cfg_scale": 5.5, "width": 80, "height": 64, "batch_size": 2, "sampler_name": "Euler a",
               "override_settings": {"sd_model_checkpoint": "tiny-sd [0123456789]"}, "enable_hr": True}
    answer = session.post(f"{base}/txt2img", json=payload, timeout=300)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    info = json.loads(result["info"])
    assert len(result["images"]) == 2 and info["all_seeds"] == [7, 8]
    assert info["zishu"]["ignored"] == ["enable_hr"]  # accepted, as A1111 accepts fields, and said
    assert [png(i).size for i in result["images"]] == [(80, 64), (80, 64)]
    first = read_parameters(info["infotexts"][0])
    assert first["Prompt"] == "a cat on a mat <lora:cats:0.6>" and "cats: " in first["Lora hashes"]
    assert first["Model"] == "tiny-sd" and first["CFG scale"] == "5.5"
    job = served.runtime.jobs.get(info["zishu"]["job"]).as_dict()
    assert job["params"]["loras"] == [{"id": "alice/cats@1.0.0", "weight": 0.6}]
    assert job["params"]["model"] == TITLE
    # the same payload again: the stored pictures, at once (the studio's result cache)
    again = json.loads(session.post(f"{base}/txt2img", json=payload, timeout=300).json()["info"])
    assert again["zishu"]["cached"] and again["zishu"]["images"] == info["zishu"]["images"]
    # img2img from the first picture (bare base64, as A1111 clients send it)
    answer = session.post(f"{base}/img2img", json={"init_images": [result["images"][0]], "prompt": "a cat",
                                                    "steps": 4, "width": 80, "height": 64, "seed": 3}, timeout=300)
    assert answer.status_code == 200, answer.text
    drawn = json.loads(answer.json()["info"])
    params = served.runtime.jobs.get(drawn["zishu"]["job"]).as_dict()["params"]
    assert params["strength"] == 0.75 and params["init_image"] == "data:image/png;base64," + result["images"][0]
    assert png(answer.json()["images"][0]).size == (80, 64)
    plain = session.post(f"{base}/txt2img", json={"prompt": "a cat", "steps": 4, "width": 80, "height": 64,
                                                  "seed": 3}, timeout=300).json()["images"][0]
    assert png(plain).tobytes() != png(answer.json()["images"][0]).tobytes()  # the init picture made a difference
    assert "init_images" not in answer.json()["parameters"]  # not echoed back (megabytes)
    styles = {s["name"]: s for s in session.get(f"{base}/prompt-styles", timeout=30).json()}
    assert {"anime", "cartoon", "realistic", "pixel-art"} <= set(styles) and "{prompt}" in styles["anime"]["prompt"]
    assert session.get(f"{base}/loras", timeout=30).json() == [
        {"name": "cats", "alias": "cats", "path": "alice/cats@1.0.0", "metadata": {}}]


@pytest.mark.parametrize("payload,field,message", [
    ({"prompt": "a cat", "width": 100}, ["width"], "must be a multiple of 8, got 100"),
    ({"prompt": "a cat", "width": 4096}, ["width"], "must be from 64 to 2048"),
    ({"prompt": "a cat", "cfg_scale": "lots"}, ["cfg_scale"], "valid number"),
    ({"prompt": "a cat", "steps": 2.5}, ["steps"], "must be a whole number, got 2.5"),
    ({"prompt": "a cat", "sampler_name": "Nope"}, ["sampler_name"], "'Nope' is not one of: Euler, "),
    ({"prompt": "a cat", "sampler_name": "Euler", "scheduler": "exponential"}, ["scheduler"], "not one of"),
    ({"prompt": "a cat", "sampler_name": "Euler", "scheduler": "karras"}, ["scheduler"],
     "Karras is available with: DPM++ 2M, LMS, not with 'Euler'"),
    ({"prompt": "a cat", "batch_size": 4, "n_iter": 3}, ["batch_size"], "at most 8, got 4 × 3"),
    ({"prompt": "a cat", "styles": ["a", "b"]}, ["styles"], "one style at a time"),
    ({"prompt": "a cat <lora:dogs:1>"}, ["prompt"], "<lora:dogs> is not an installed LoRA (installed: alice/cats"),
    ({"prompt": "a cat <lora:cats:much>"}, ["prompt"], "the weight must be a number"),
    ({"prompt": ""}, ["prompt"], "must not be empty"),
    ({"prompt": "a cat", "override_settings": {"sd_model_checkpoint": "sdxl-base"}}, ["sd_model_checkpoint"],
     "'sdxl-base' is not an installed image model"),
    ({"prompt": "a cat", "seed": 2**40}, ["seed"], "less than or equal to"),
    ({"prompt": "a nude figure"}, ["prompt"], "safe mode: the prompt contains nude"),
])
def test_bad_payloads_are_422_naming_a1111s_field_and_queue_nothing(served, payload, field, message):
    answer = requests.post(f"{served.api_url}/sdapi/v1/txt2img", json=payload,
                           headers={"Authorization": f"Bearer {served.key}"}, timeout=60)
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["detail"]  # FastAPI's shape, which A1111 answers with
    assert detail["loc"] == ["body", *field] and message in detail["msg"], detail
    assert records.recent() == []  # refused before anything was queued


@pytest.mark.parametrize("path,payload,field,message", [
    ("/sdapi/v1/img2img", {"prompt": "a cat"}, ["init_images"], "required"),
    ("/sdapi/v1/img2img", {"prompt": "a cat", "init_images": ["not base64!"]}, ["init_images"], "base64"),
    ("/sdapi/v1/img2img", {"prompt": "a cat", "init_images": ["AAAA"], "denoising_strength": 2},
     ["denoising_strength"], "less than or equal to 1"),
    ("/sdapi/v1/options", {"sd_model_checkpoint": "nothing"}, ["sd_model_checkpoint"], "not an installed image model"),
])
def test_other_refusals_name_the_field(served, path, payload, field, message):
    answer = requests.post(f"{served.api_url}{path}", json=payload,
                           headers={"Authorization": f"Bearer {served.key}"}, timeout=60)
    assert answer.status_code == 422, answer.text
    [detail] = answer.json()["detail"]
    assert detail["loc"] == ["body", *field] and message in detail["msg"], detail


def test_a_body_that_is_no_json_object_is_400_in_a1111s_error_shape(served):
    answer = requests.post(f"{served.api_url}/sdapi/v1/txt2img", json=["a", "list"],
                           headers={"Authorization": f"Bearer {served.key}"}, timeout=60)
    assert answer.status_code == 400
    assert answer.json() == {"error": "USAGE", "detail": "the request body must be a JSON object", "body": "",
                             "errors": "the request body must be a JSON object"}


def test_progress_shows_the_running_job_with_its_preview_and_interrupt_stops_it(served):
    headers = {"Authorization": f"Bearer {served.key}"}
    base = f"{served.api_url}/sdapi/v1"
    answers: list[requests.Response] = []
    drawing = threading.Thread(target=lambda: answers.append(requests.post(
        f"{base}/txt2img", json={"prompt": "a slow cat", "steps": 150, "width": 64, "height": 64, "seed": 1},
        headers=headers, timeout=600)))
    drawing.start()
    deadline = time.monotonic() + 300
    while True:
        state = requests.get(f"{base}/progress", headers=headers, timeout=30).json()
        if state["current_image"] and state["progress"] > 0:
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert 0 < state["progress"] < 1 and state["eta_relative"] >= 0
    assert state["state"]["job_count"] == 1 and state["state"]["sampling_steps"] == 150
    assert 0 < state["state"]["sampling_step"] < 150
    assert png(state["current_image"]).size[0] > 0  # the job's latent preview, as a PNG
    assert requests.post(f"{base}/interrupt", headers=headers, timeout=30).status_code == 200
    drawing.join(300)
    [answer] = answers
    assert answer.status_code == 200 and answer.json()["images"] == []
    info = json.loads(answer.json()["info"])
    assert info["zishu"]["interrupted"] is True
    assert served.runtime.jobs.get(info["zishu"]["job"]).status == "CANCELLED"
    idle = requests.get(f"{base}/progress", headers=headers, timeout=30).json()
    assert idle["progress"] == 0.0 and idle["state"]["job_count"] == 0 and idle["current_image"] is None


def test_a_job_that_fails_answers_with_its_errors_status_in_a1111s_shape(served, tiny):
    from conftest import install_resource

    # a model folder the engine cannot load (the pipeline one level too deep): the job itself fails
    install_resource(served.home, "alice/broken-sd", {"format": "diffusers", "role": "image"},
                     files={"sd": tiny["sd"]})
    answer = requests.post(f"{served.api_url}/sdapi/v1/txt2img", headers={"Authorization": f"Bearer {served.key}"},
                           json={"prompt": "a cat", "steps": 1, "width": 64, "height": 64,
                                 "override_settings": {"sd_model_checkpoint": "alice/broken-sd@1.0.0"}}, timeout=300)
    assert answer.status_code == 503, answer.text  # EngineError's status
    error = answer.json()
    assert error["error"] == "ENGINE_FAILED" and "alice/broken-sd@1.0.0" in error["detail"]
    assert error["errors"] == error["detail"] and error["body"] == ""
    [job] = records.recent()
    assert job.status == "FAILED" and job.error_code == "ENGINE_FAILED"  # the job says so too, in the Jobs panel
