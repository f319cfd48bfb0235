"""Tiny random-weight Stable Diffusion models written with the real libraries, for tests and benches.

``write_tiny_sd`` (SD 1.5 layout, or SD 2.x/Turbo), ``write_tiny_sdxl`` (two text encoders), ``write_tiny_lora`` (a
LoRA on a tiny pipeline's UNet attention) and ``write_tiny_single_file`` (a tiny pipeline as one
original-layout ``.safetensors`` checkpoint, with the diffusers config folder that loads it offline).
Channels are (32, 64) and the VAE halves the size, so a 64×64 draw of 4 steps takes well under a
second on a CPU. Nothing is downloaded: the CLIP tokenizer is built from a byte-level vocab.json and
merges.txt written here. ``write_full_size_sd`` builds SD 1.5 and SDXL at their real sizes (random
weights) for benchmarks.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

TEXT_DIM = 32


def _byte_chars() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the bytes 0..255 (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _tokenizer():
    """A CLIPTokenizer whose vocabulary is every byte, alone and ending a word (no merges)."""
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
        (Path(folder) / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def _text_encoder(tokenizer, with_projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=TEXT_DIM, intermediate_size=37, num_hidden_layers=2,
                            num_attention_heads=4, projection_dim=TEXT_DIM, max_position_embeddings=77,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config).eval()


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         sample_size=64)


def _scheduler(spacing: str = "leading"):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  timestep_spacing=spacing, steps_offset=1)


def write_tiny_sd(folder: Path, seed: int = 0, turbo: bool = False) -> Path:
    """A tiny SD 1.5-layout pipeline (UNet, VAE, one CLIP text encoder) saved as a diffusers folder;
    ``turbo``: laid out as SD 2.x / SD-Turbo instead (linear attention projections, a head size per
    block, "trailing" timesteps for one-step drawing)."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_DIM,
                                attention_head_dim=(2, 4) if turbo else 8, use_linear_projection=turbo)
    pipe = StableDiffusionPipeline(vae=_vae(), text_encoder=_text_encoder(tokenizer), tokenizer=tokenizer, unet=unet,
                                   scheduler=_scheduler("trailing" if turbo else "leading"), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return Path(folder)


def write_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """A tiny SDXL-layout pipeline: two text encoders (the second with a projection) and a text-time UNet."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
                                cross_attention_dim=2 * TEXT_DIM)
    pipe = StableDiffusionXLPipeline(vae=_vae(), text_encoder=_text_encoder(tokenizer), tokenizer=tokenizer,
                                     text_encoder_2=_text_encoder(tokenizer, with_projection=True),
                                     tokenizer_2=tokenizer, unet=unet, scheduler=_scheduler())
    pipe.save_pretrained(folder)
    return Path(folder)


def write_tiny_lora(folder: Path, base_folder: Path, rank: int = 4, seed: int = 1) -> Path:
    """A LoRA of ``rank`` on the attention projections of ``base_folder``'s UNet, with random (non-zero)
    weights so it visibly changes the image; saved as ``folder/pytorch_lora_weights.safetensors``."""
    import torch
    from diffusers import DiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    pipe = DiffusionPipeline.from_pretrained(base_folder, local_files_only=True)
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                     target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in pipe.unet.named_parameters():
            if "lora_B" in name:  # peft starts B at zero (a no-op LoRA); make it do something
                param.normal_(std=0.5)
    pipe.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet))
    return Path(folder) / "pytorch_lora_weights.safetensors"


def write_tiny_single_file(path: Path, base_folder: Path) -> Path:
    """``base_folder``'s SD 1.5-layout pipeline as one checkpoint in the original Stable Diffusion layout
    (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``) at
    ``path``, with its configs (no weights) in a ``config`` folder beside it: what loads it offline."""
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    path, base_folder = Path(path), Path(base_folder)
    pipe = StableDiffusionPipeline.from_pretrained(base_folder, local_files_only=True)
    unet, vae = pipe.unet.config, pipe.vae.config
    attention_up = {n for n, kind in enumerate(unet.up_block_types) if "CrossAttn" in kind}
    tensors = {f"model.diffusion_model.{_ldm_unet_key(k, unet.layers_per_block, attention_up)}": v
               for k, v in pipe.unet.state_dict().items()}
    tensors |= {f"first_stage_model.{_ldm_vae_key(k, len(vae.up_block_types))}": v
                for k, v in pipe.vae.state_dict().items()}
    tensors |= {f"cond_stage_model.transformer.text_model.{k.removeprefix('text_model.')}": v
                for k, v in pipe.text_encoder.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items() if v.dtype != torch.int64}, path)
    shutil.copytree(base_folder, path.parent / "config", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return path


_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "norm2": "out_layers.0", "conv2": "out_layers.3",
           "time_emb_proj": "emb_layers.1", "conv_shortcut": "skip_connection"}
_VAE_TOP = {"encoder.conv_norm_out": "encoder.norm_out", "decoder.conv_norm_out": "decoder.norm_out"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_BLOCK = r"(down_blocks|up_blocks|mid_block)\.(?:(\d+)\.)?(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)"


def _rename_start(rest: str, names: dict[str, str]) -> str:
    for new, old in names.items():
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def _ldm_unet_key(key: str, layers: int, attention_up: set[int]) -> str:
    """A diffusers UNet key in the original layout (the inverse of diffusers' convert_ldm_unet_checkpoint)."""
    match = re.fullmatch(_BLOCK, key)
    if match is None:
        return _rename_start(key, _UNET_TOP)
    where, block, part, index, rest = match.groups()
    per, index = layers + 1, int(index)
    if part == "resnets":
        rest = _rename_start(rest, _RESNET)
    inner = 0 if part == "resnets" else 1
    if where == "mid_block":
        return f"middle_block.{2 * index if part == 'resnets' else 1}.{rest}"
    block = int(block)
    if part == "downsamplers":
        return f"input_blocks.{(block + 1) * per}.0.op.{rest.removeprefix('conv.')}"
    if part == "upsamplers":
        return f"output_blocks.{block * per + layers}.{2 if block in attention_up else 1}.{rest}"
    if where == "down_blocks":
        return f"input_blocks.{1 + block * per + index}.{inner}.{rest}"
    return f"output_blocks.{block * per + index}.{inner}.{rest}"


def _ldm_vae_key(key: str, blocks: int) -> str:
    """A diffusers VAE key in the original layout (the inverse of diffusers' convert_ldm_vae_checkpoint)."""
    side, _, inner = key.partition(".")
    match = re.fullmatch(_BLOCK, inner) if side in ("encoder", "decoder") else None
    if match is None:
        return _rename_start(key, _VAE_TOP)
    where, block, part, index, rest = match.groups()
    rest = rest.replace("conv_shortcut", "nin_shortcut")
    if where == "mid_block":
        if part == "resnets":
            return f"{side}.mid.block_{int(index) + 1}.{rest}"
        return f"{side}.mid.attn_1.{_rename_start(rest, _VAE_ATTENTION)}"
    if where == "down_blocks":
        inner = "downsample" if part == "downsamplers" else f"block.{index}"
        return f"encoder.down.{block}.{inner}.{rest}"
    inner = "upsample" if part == "upsamplers" else f"block.{index}"
    return f"decoder.up.{blocks - 1 - int(block)}.{inner}.{rest}"


# The published architectures at their real sizes (random weights), for benchmarks on a GPU.
FULL_SIZE = {
    "sd15": {"unet": {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2, "sample_size": 64,
                      "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                      "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                      "cross_attention_dim": 768, "attention_head_dim": 8},
             "text": [{"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 12}]},
    "sdxl": {"unet": {"block_out_channels": (320, 640, 1280), "layers_per_block": 2, "sample_size": 128,
                      "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                      "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                      "transformer_layers_per_block": (1, 2, 10), "attention_head_dim": (5, 10, 20),
                      "use_linear_projection": True, "addition_embed_type": "text_time",
                      "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
                      "cross_attention_dim": 2048},
             "text": [{"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 12},
                      {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                       "num_attention_heads": 20, "projection_dim": 1280}]},
}


def write_full_size_sd(folder: Path, shape: str = "sd15", dtype: str = "float16", seed: int = 0) -> Path:
    """An SD 1.5- or SDXL-sized pipeline with random weights (``FULL_SIZE``; the VAE of both), saved
    in ``dtype``: the compute of the real model, none of its pictures."""
    import torch
    from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    sizes = FULL_SIZE[shape]
    tokenizer = _tokenizer()
    encoders = []
    for i, text in enumerate(sizes["text"]):
        config = CLIPTextConfig(vocab_size=len(tokenizer), max_position_embeddings=77, hidden_act="gelu",
                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id, **text)
        encoders.append((CLIPTextModelWithProjection if i == 1 else CLIPTextModel)(config).eval())
    unet = UNet2DConditionModel(in_channels=4, out_channels=4, **sizes["unet"])
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=sizes["unet"]["sample_size"] * 8)
    if shape == "sdxl":
        pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=encoders[0], tokenizer=tokenizer,
                                         text_encoder_2=encoders[1], tokenizer_2=tokenizer, unet=unet,
                                         scheduler=_scheduler())
    else:
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=encoders[0], tokenizer=tokenizer, unet=unet,
                                       scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.to(getattr(torch, dtype)).save_pretrained(folder)
    return Path(folder)
