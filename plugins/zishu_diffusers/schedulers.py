"""Samplers by the names AUTOMATIC1111 and its clients use ("Euler a", "DPM++ 2M Karras", …), each a
diffusers scheduler class and the settings that make it that sampler.

A request names one (``ImageRequest.scheduler``); the pipeline's own scheduler config is the base, so
the model's training settings (beta schedule, timestep spacing) carry over. ``None`` draws with the
scheduler the model ships with.
"""

from __future__ import annotations

from typing import Any

SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "PLMS": ("PNDMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}
NAMES = tuple(SCHEDULERS)


def make_scheduler(name: str, base_config):
    """The scheduler ``name`` built from the pipeline's own scheduler ``base_config``."""
    import diffusers

    class_name, settings = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(base_config, **settings)
