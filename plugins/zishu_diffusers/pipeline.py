"""Loading a text-to-image pipeline, offline, onto a device, with the model's LoRAs applied.

Two layouts load:

- a diffusers folder (``model_index.json`` and a folder per component) → ``AutoPipelineForText2Image``;
- a single checkpoint file (``.safetensors``/``.ckpt``, the original Stable Diffusion layout) →
  ``from_single_file``. diffusers needs the matching pipeline's config files for that (no weights);
  it normally fetches them from the Hugging Face Hub. Here they come from a folder named by the
  manifest (``spec.config``), a ``config`` folder beside the checkpoint, or the local Hugging Face
  cache; never from the network.

Precision: float32 on the CPU; float16 on a GPU. Not bfloat16 although most GPUs support it: on an
H200, SDXL ran 1.8× slower per step in bfloat16 than in float16 (135 against 66 ms at 1024²), so the
choice is what is fast, not what is supported. Attention runs through PyTorch's
scaled-dot-product attention (the diffusers default on torch 2); on a GPU with little memory it is
sliced. On a GPU the UNet and VAE also go channels-last and their attention's q/k/v projections are
fused into one matrix (``speed_up``: 2.6–2.9 s → 2.2 s for SDXL there); fusing is undone before a
LoRA loads (``unfuse``), since a fused projection would bypass the LoRA's q/k/v layers.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

from zishu.engines import ModelRef
from zishu.errors import EngineError

from .files import folder_variant, is_pipeline_folder, local_configs, safetensors_shapes

SMALL_GPU = 8 * 2**30  # below this much VRAM, attention is computed in slices


def load_pipeline(model: ModelRef, device: str):
    """The text-to-image pipeline for ``model`` on ``device``, its LoRAs set to their weights."""
    import torch

    if device == "cpu":
        dtype = torch.float32
    elif device.split(":")[0] == "cuda":
        if not torch.cuda.is_available():
            raise EngineError(f"{device} was asked for, but this torch has no CUDA (a CPU build, or no driver)")
        dtype = torch.float16  # faster than bfloat16 where both run (see above)
    else:
        raise EngineError(f"the diffusers engine runs on cpu or cuda, not {device!r}")

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()  # the host shows its own progress; these would spill on
    transformers_logging.disable_progress_bar()  # the terminal of `zishu run` and the app's log
    transformers_logging.set_verbosity_error()  # (and its notes on optional image processors)
    with warnings.catch_warnings():  # newer diffusers prefer dtype=; torch_dtype= works in every 0.x
        warnings.filterwarnings("ignore", "`torch_dtype` is deprecated", FutureWarning)
        if is_pipeline_folder(model.path):
            pipe = _from_folder(model.path, dtype)
        else:
            pipe = _from_single_file(model, model.file(".safetensors", ".ckpt"), dtype)
    pipe.set_progress_bar_config(disable=True)
    if model.adapters:
        apply_loras(pipe, model)
    if device != "cpu":
        pipe.to(device)
        if torch.cuda.get_device_properties(torch.device(device)).total_memory < SMALL_GPU:
            pipe.enable_attention_slicing()
        else:
            speed_up(pipe, fuse=not model.adapters)
    return pipe


def speed_up(pipe, fuse: bool = True) -> None:
    """Channels-last memory for the UNet and VAE, and (``fuse``) fused q/k/v attention projections,
    where the pipeline has them: what diffusers documents for faster drawing on a GPU."""
    import torch

    for name in ("unet", "vae"):
        part = getattr(pipe, name, None)
        if part is not None:
            part.to(memory_format=torch.channels_last)
    if fuse and callable(getattr(pipe, "fuse_qkv_projections", None)):
        try:
            pipe.fuse_qkv_projections()
        except (ValueError, AttributeError, NotImplementedError):  # a VAE or attention that cannot fuse
            unfuse(pipe)


def unfuse(pipe) -> None:
    """Undo ``fuse_qkv_projections`` (nothing when the pipeline is not fused)."""
    if getattr(pipe, "fusing_unet", False) or getattr(pipe, "fusing_vae", False):
        pipe.unfuse_qkv_projections()


def _from_folder(folder: Path, dtype):
    from diffusers import AutoPipelineForText2Image

    pipeline_class = _pipeline_class(folder)
    try:
        return AutoPipelineForText2Image.from_pretrained(folder, torch_dtype=dtype, local_files_only=True,
                                                         variant=folder_variant(folder))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise EngineError(f"could not load the {pipeline_class} pipeline in {folder}: {e}") from e


def _pipeline_class(folder: Path) -> str:
    """The pipeline class named by ``folder/model_index.json`` (refused when the file is not one)."""
    index_file = folder / "model_index.json"
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EngineError(f"{index_file} is not valid JSON: {e}") from e
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise EngineError(f"{index_file}: no _class_name (the pipeline class); this is not a diffusers pipeline folder")
    return index["_class_name"]


def _from_single_file(model: ModelRef, checkpoint: Path, dtype):
    import diffusers
    from diffusers import AutoPipelineForText2Image

    if checkpoint.suffix == ".safetensors" and all("lora" in name for name in safetensors_shapes(checkpoint)):
        raise EngineError(f"{checkpoint} is a LoRA, not a model: apply it to the model it was made for "
                          "(zishu run image --model BASE --lora LORA)")
    config = _single_file_config(model, checkpoint)
    name = _pipeline_class(config)
    pipeline_class = getattr(diffusers, name, None)
    if pipeline_class is None or not hasattr(pipeline_class, "from_single_file"):
        raise EngineError(f"{config / 'model_index.json'}: _class_name {name!r} is not a diffusers pipeline that "
                          "loads single checkpoint files")
    try:
        pipe = pipeline_class.from_single_file(str(checkpoint), config=str(config), torch_dtype=dtype,
                                               local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise EngineError(f"could not load {checkpoint} as a {pipeline_class.__name__} (configs from {config}): "
                          f"{e}") from e
    return AutoPipelineForText2Image.from_pipe(pipe)


def _single_file_config(model: ModelRef, checkpoint: Path) -> Path:
    """The diffusers config folder for a single-file checkpoint: on disk beside it (``files.local_configs``),
    else in the local Hugging Face cache of the base model diffusers recognises in the checkpoint.
    Refused, saying what to provide, when neither is here."""
    local = local_configs(model, checkpoint)
    if local is not None:
        return local
    base = _base_model_of(checkpoint)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        cached = Path(snapshot_download(base, local_files_only=True))
        if (cached / "model_index.json").is_file():
            return cached
    except LocalEntryNotFoundError:
        pass
    raise EngineError(f"{checkpoint} is a single-file checkpoint; loading it offline needs the configs of {base} "
                      "(its model_index.json and each component's config, no weights) in a folder named 'config' "
                      f"beside it, or in the Hugging Face cache. Fetch them once with: hf download "
                      f"{base} --exclude '*.safetensors' '*.bin' '*.ckpt' '*.pt'")


def _base_model_of(checkpoint: Path) -> str:
    """The Hugging Face repository diffusers takes this checkpoint's architecture from (read from the
    tensors' names and shapes, without loading a ``.safetensors`` file)."""
    import torch
    from diffusers.loaders.single_file_utils import fetch_diffusers_config, load_single_file_checkpoint

    if checkpoint.suffix == ".safetensors":
        tensors = {name: torch.empty(shape, device="meta") for name, shape in safetensors_shapes(checkpoint).items()}
    else:
        try:
            tensors = load_single_file_checkpoint(str(checkpoint), local_files_only=True)
        except Exception as e:
            raise EngineError(f"{checkpoint} is not a checkpoint torch can read: {type(e).__name__}: {e}") from e
    try:
        return fetch_diffusers_config(tensors)["pretrained_model_name_or_path"]
    except (KeyError, TypeError, AttributeError) as e:
        raise EngineError(f"{checkpoint} is not a Stable Diffusion checkpoint diffusers recognises: "
                          f"{type(e).__name__}: {e}") from e


def apply_loras(pipe, model: ModelRef) -> None:
    """Load each of ``model.adapters`` into the pipeline (peft) and set their weights; a LoRA made for
    another base model is refused by name."""
    base = replace(model, adapters=()).label
    names = []
    for number, (lora, _) in enumerate(model.adapters):
        names.append(load_lora(pipe, lora, f"lora{number}", base))
    pipe.set_adapters(names, adapter_weights=[weight for _, weight in model.adapters])


def load_lora(pipe, lora: ModelRef, name: str, base: str) -> str:
    """Load ``lora`` into the pipeline as adapter ``name``; refused by name when it does not fit
    ``base`` (the model's label)."""
    weights = lora.file(".safetensors")
    try:
        pipe.load_lora_weights(str(weights.parent), weight_name=weights.name, adapter_name=name,
                               local_files_only=True)
    except (RuntimeError, ValueError, KeyError) as e:
        raise EngineError(f"the LoRA {lora.label} does not fit {base} (made for another base model?): "
                          f"{_why(e)}") from e
    loaded = {n for per_component in pipe.get_list_adapters().values() for n in per_component}
    if name not in loaded:
        raise EngineError(f"the LoRA {lora.label} does not fit {base}: none of its layers are in this model")
    return name


def _why(error: Exception) -> str:
    """The telling line of a load error: its first size mismatch, else its first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    mismatch = [line for line in lines if line.startswith("size mismatch")]
    return ((mismatch or lines or [type(error).__name__])[0])[:300]
