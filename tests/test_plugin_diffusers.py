"""The diffusers image engine (plugins/zishu_diffusers) with the real diffusers, transformers and peft,
on tiny random SD 1.5 / SDXL pipelines, LoRAs and a single-file checkpoint that ``tiny_diffusers``
writes: sizes and batches, seeds, progress, cancelling, LoRAs and their weights, memory estimates,
offline single files, every rejection, and the host's path to them."""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from tiny_diffusers import write_tiny_lora, write_tiny_sd, write_tiny_sdxl, write_tiny_single_file
from zishu.engines import ImageRequest, ModelCache, ModelRef, use
from zishu.errors import EngineError, JobCancelled
from zishu_diffusers import DiffusersEngine

engine = DiffusersEngine()
MB = 2**20
CAT = ImageRequest("a cat on a mat", width=64, height=48, steps=4, guidance=5.0, seed=7)


def ref(path: Path, adapters=()) -> ModelRef:
    model = ModelRef(key=str(path), path=path)
    return model.with_adapters([(ref(p), w) for p, w in adapters]) if adapters else model


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("diffusers")
    sd = write_tiny_sd(folder / "sd")
    xl = write_tiny_sdxl(folder / "xl")
    return {"sd": sd, "xl": xl, "turbo": write_tiny_sd(folder / "turbo", turbo=True),
            "lora": write_tiny_lora(folder / "lora", sd), "xl_lora": write_tiny_lora(folder / "xl_lora", xl),
            "single": write_tiny_single_file(folder / "single" / "tiny-sd.safetensors", sd)}


@pytest.fixture(scope="module")
def sd(files):
    handle = engine.load(ref(files["sd"]))
    yield handle
    handle.close()



def test_the_libraries_are_there_and_the_engine_describes_itself():
    assert engine.unavailable() is None
    assert (engine.info.kind, engine.info.name) == ("image", "diffusers")
    assert engine.info.formats == ("diffusers", "safetensors", "ckpt")
    assert engine.info.capabilities == {"lora", "gpu", "img2img", "inpaint", "controlnet"}


@pytest.mark.parametrize("model", ["sd", "xl"])
def test_sd_and_sdxl_draw_through_the_host_at_the_size_and_batch_asked(files, runtime, model):
    assert "diffusers" in runtime.engines.engines
    ready = use(runtime, "image", str(files[model]))
    assert (ready.engine.info.name, ready.device, ready.model.format) == ("diffusers", "cpu", "diffusers")
    images = ready.handle.draw(ImageRequest("a cat", width=64, height=48, steps=2, batch=3, seed=11))
    assert [(image.size, image.mode, image.info["seed"]) for image in images] == [
        ((64, 48), "RGB", 11), ((64, 48), "RGB", 12), ((64, 48), "RGB", 13)]
    assert use(runtime, "image", str(files[model])).handle is ready.handle  # loaded once, then cached


def test_a_turbo_model_draws_in_one_step_without_guidance(files, runtime):
    turbo = use(runtime, "image", str(files["turbo"])).handle
    seen = []
    images = turbo.draw(replace(CAT, steps=1, guidance=0.0, batch=2), progress=lambda *a: seen.append(a))
    assert [image.size for image in images] == [(64, 48)] * 2 and seen == [(1, 1)]
    assert not np.array_equal(pixels(images[0]), pixels(images[1]))


def test_the_same_seed_gives_the_same_pixels_and_another_seed_others(sd):
    first, again = sd.draw(CAT)[0], sd.draw(CAT)[0]
    assert np.array_equal(pixels(first), pixels(again))
    other = sd.draw(replace(CAT, seed=8))[0]
    assert np.abs(pixels(first) - pixels(other)).mean() > 5
    batch = sd.draw(replace(CAT, batch=2))
    assert np.array_equal(pixels(batch[0]), pixels(first))  # each picture of a batch has its own seed
    assert np.array_equal(pixels(batch[1]), pixels(other))
    unseeded = sd.draw(replace(CAT, seed=None))[0]
    chosen = unseeded.info["seed"]
    assert np.array_equal(pixels(sd.draw(replace(CAT, seed=chosen))[0]), pixels(unseeded))


def test_progress_is_called_once_per_step_in_order(sd):
    seen = []
    sd.draw(replace(CAT, steps=5), progress=lambda step, steps: seen.append((step, steps)))
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_cancelling_stops_between_steps_and_raises(sd):
    seen = []
    with pytest.raises(JobCancelled, match="after step 2 of 6"):
        sd.draw(replace(CAT, steps=6), progress=lambda step, steps: seen.append(step),
                cancelled=lambda: len(seen) >= 2)
    assert seen == [1, 2]
    with pytest.raises(JobCancelled, match="before it started"):
        sd.draw(CAT, progress=seen.append, cancelled=lambda: True)
    assert sd.draw(CAT)[0].size == (64, 48)  # the pipeline draws on afterwards


@pytest.mark.parametrize("base,lora", [("sd", "lora"), ("xl", "xl_lora")])
def test_a_lora_changes_the_picture_and_at_weight_zero_gives_the_base_back(files, base, lora):
    def draw(adapters=()):
        handle = engine.load(ref(files[base], adapters))
        try:
            return pixels(handle.draw(CAT)[0])
        finally:
            handle.close()

    plain = draw()
    assert np.abs(draw([(files[lora], 1.0)]) - plain).mean() > 5
    assert np.abs(draw([(files[lora], 0.0)]) - plain).max() <= 1  # rounding to 8 bits at most


def test_loras_apply_through_the_host_as_their_own_cache_entry(files, runtime):
    plain = use(runtime, "image", str(files["sd"]))
    tuned = use(runtime, "image", str(files["sd"]), adapters=[(str(files["lora"]), 0.8)])
    assert tuned.handle is not plain.handle and tuned.model.key != plain.model.key
    assert not np.array_equal(pixels(tuned.handle.draw(CAT)[0]), pixels(plain.handle.draw(CAT)[0]))


def test_a_lora_for_another_base_model_is_refused_by_name(files):
    with pytest.raises(EngineError, match=r"the LoRA .*xl_lora.* does not fit .*sd \(made for another base model\?\): "
                                          r"size mismatch"):
        engine.load(ref(files["sd"], [(files["xl_lora"], 1.0)]))
    with pytest.raises(EngineError, match=r"the LoRA .*lora.* does not fit .*xl"):
        engine.load(ref(files["xl"], [(files["lora"], 1.0)]))


def test_a_lora_whose_layers_are_not_in_the_model_is_refused(files, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(files["lora"])
    save_file({k.replace("unet.", "unet.nowhere."): v for k, v in tensors.items()}, tmp_path / "stray.safetensors")
    with pytest.raises(EngineError, match=r"the LoRA .*stray.safetensors does not fit .*sd .*Target modules"):
        engine.load(ref(files["sd"], [(tmp_path / "stray.safetensors", 1.0)]))
    save_file({k.replace("unet.", "prior."): v for k, v in tensors.items()}, tmp_path / "prior.safetensors")
    with pytest.raises(EngineError, match=r"prior.safetensors does not fit .*sd: none of its layers are in this model"):
        engine.load(ref(files["sd"], [(tmp_path / "prior.safetensors", 1.0)]))


@pytest.mark.parametrize("field,value,message", [
    ("width", 60, r"ImageRequest.width must be a multiple of 8 from 8 to 4096 for .*, got 60"),
    ("height", 0, r"ImageRequest.height must be a multiple of 8 .* got 0"),
    ("height", 8192, r"ImageRequest.height .* got 8192"),
    ("width", 64.0, r"ImageRequest.width .* got 64.0"),
    ("steps", 0, r"ImageRequest.steps must be a whole number from 1 to 1000, got 0"),
    ("steps", 1001, r"ImageRequest.steps .* got 1001"),
    ("batch", 0, r"ImageRequest.batch must be from 1 to 8, got 0"),
    ("batch", 9, r"ImageRequest.batch .* got 9"),
    ("guidance", -1.0, r"ImageRequest.guidance must be a number ≥ 0, got -1.0"),
    ("guidance", float("nan"), r"ImageRequest.guidance .* got nan"),
    ("seed", -1, r"ImageRequest.seed must be a whole number from 0 to 2\*\*64 - batch, got -1"),
    ("prompt", None, r"ImageRequest.prompt must be text, got NoneType"),
    ("negative_prompt", 3, r"ImageRequest.negative_prompt must be text, got int"),
])
def test_bad_request_fields_are_refused_naming_the_field(sd, field, value, message):
    seen = []
    with pytest.raises(EngineError, match=message):
        sd.draw(replace(CAT, **{field: value}), progress=lambda *a: seen.append(a))
    assert seen == []  # refused before any step


def test_a_single_checkpoint_file_loads_offline_with_its_configs_beside_it(files, sd, runtime):
    single = use(runtime, "image", str(files["single"]))
    assert single.model.format == "safetensors"
    assert np.array_equal(pixels(single.handle.draw(CAT)[0]), pixels(sd.draw(CAT)[0]))  # the same weights


def test_a_single_file_finds_its_configs_in_the_hugging_face_cache(files, tmp_path, monkeypatch):
    import huggingface_hub.constants

    lone = tmp_path / "lone" / "tiny-sd.safetensors"
    lone.parent.mkdir()
    shutil.copy(files["single"], lone)
    # diffusers reads the tiny checkpoint as SD 1.5: put that repository's configs in a local cache
    repo = tmp_path / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    shutil.copytree(files["single"].parent / "config", repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    handle = engine.load(ref(lone))
    assert handle.draw(CAT)[0].size == (64, 48)
    handle.close()


def test_a_single_file_without_configs_a_lora_and_junk_are_refused_saying_why(files, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    lone = tmp_path / "tiny-sd.safetensors"
    shutil.copy(files["single"], lone)
    with pytest.raises(EngineError, match=r"tiny-sd.safetensors is a single-file checkpoint; loading it offline needs "
                                          r"the configs of stable-diffusion-v1-5/stable-diffusion-v1-5 .* folder named "
                                          r"'config' beside it.* hf download stable-diffusion-v1-5/"):
        engine.load(ref(lone))
    with pytest.raises(EngineError, match=r"pytorch_lora_weights.safetensors is a LoRA, not a model"):
        engine.load(ref(files["lora"]))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(EngineError, match=re.escape("junk.safetensors is not a readable .safetensors file")):
        engine.load(ref(junk))


def test_a_broken_pipeline_folder_is_refused_through_the_cache(files, tmp_path):
    cache = ModelCache(ram_budget=2**33, vram_budget=0, free_ram=lambda: 2**33)
    broken = tmp_path / "broken"
    shutil.copytree(files["sd"], broken)
    (broken / "model_index.json").write_text("{ not json")
    with pytest.raises(EngineError, match=r"broken/model_index.json is not valid JSON"):
        cache.get(engine, ref(broken))
    (broken / "model_index.json").write_text(json.dumps(["a list"]))
    with pytest.raises(EngineError, match=r"model_index.json: no _class_name"):
        cache.get(engine, ref(broken))
    (broken / "model_index.json").write_text((files["sd"] / "model_index.json").read_text())
    shutil.rmtree(broken / "unet")
    with pytest.raises(EngineError, match=r"could not load the StableDiffusionPipeline pipeline in .*broken"):
        cache.get(engine, ref(broken))
    assert cache.loaded() == []


def test_the_estimate_counts_the_weights_that_load_at_their_precision(files, tmp_path):
    def numbers(path: Path) -> int:
        with safe_open(path, "pt") as f:
            return sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118 - safe_open is not iterable

    weights = sum(numbers(p) for p in files["sd"].rglob("*.safetensors"))
    native = 64 * 64  # the UNet's sample size 32 × the VAE's scale 2, squared
    cpu = engine.estimate(ref(files["sd"]))
    assert cpu.ram == weights * 4 + 256 * MB + native * 4 * 1024 and cpu.vram == 0  # float32
    gpu = engine.estimate(ref(files["sd"]), "cuda")
    assert gpu.vram == weights * 2 + 256 * MB + native * 2 * 1024 and gpu.ram == 512 * MB  # 16 bits
    with_lora = engine.estimate(ref(files["sd"], [(files["lora"], 1.0)]))
    assert with_lora.ram == cpu.ram + numbers(files["lora"]) * 4
    assert engine.estimate(ref(files["single"])) == cpu  # its configs beside it give the native size
    doubled = tmp_path / "doubled"  # a half-precision copy beside each weight file is not counted twice
    shutil.copytree(files["sd"], doubled)
    for plain in list(doubled.rglob("*.safetensors")):
        shutil.copy(plain, plain.with_name(plain.name.replace(".safetensors", ".fp16.safetensors")))
    assert engine.estimate(ref(doubled)) == cpu
    manifest = ModelRef(key="k", path=files["sd"], ram_mb=700, vram_mb=900)
    assert (engine.estimate(manifest).ram, engine.estimate(manifest, "cuda").vram) == (700 * MB, 900 * MB)


def test_a_folder_of_only_half_precision_weights_loads_that_variant(files, tmp_path):
    half = tmp_path / "half"
    shutil.copytree(files["sd"], half)
    for plain in list(half.rglob("*.safetensors")):
        plain.rename(plain.with_name(plain.name.replace(".safetensors", ".fp16.safetensors")))
    handle = engine.load(ref(half))
    assert handle.draw(CAT)[0].size == (64, 48)
    handle.close()


def test_devices_other_than_the_cpu_are_refused_clearly_here(files):
    import torch

    with pytest.raises(EngineError, match="runs on cpu or cuda, not 'tpu'"):
        engine.load(ref(files["sd"]), "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="cuda was asked for, but this torch has no CUDA"):
            engine.load(ref(files["sd"]), "cuda")


def test_a_closed_handle_says_so(files):
    handle = engine.load(ref(files["sd"]))
    handle.close()
    with pytest.raises(EngineError, match="was unloaded"):
        handle.draw(CAT)
