"""A cheap look at a picture while it is drawn: the latents turned into RGB by a fixed linear map
(the "latent to RGB" approximation A1111 and ComfyUI show as their fast preview), no VAE decode.

Four-channel latents (SD 1.x/2.x and SDXL) map with the factors below; the result is 1/8 of the
picture's size, shrunk further to at most ``side`` pixels, so it costs well under a millisecond.
"""

from __future__ import annotations

from typing import Any

# rows: latent channels; columns: R, G, B (SD 1.5's factors; SDXL's differ little enough for a preview)
SD_FACTORS = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173), (-0.158, 0.189, 0.264), (-0.184, -0.271, -0.473))
XL_FACTORS = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362),
              (-0.3165, -0.2492, -0.2188))


def latent_preview(latents, xl: bool = False, side: int = 64) -> Any:
    """A small PIL image of the first picture in ``latents`` (batch, 4, h, w); None for other shapes."""
    import torch
    from PIL import Image

    if latents.ndim != 4 or latents.shape[1] != 4:
        return None
    factors = torch.tensor(XL_FACTORS if xl else SD_FACTORS, dtype=torch.float32)
    first = latents[0].detach().to("cpu", torch.float32)  # (4, h, w)
    rgb = torch.einsum("chw,cr->hwr", first, factors)
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    image = Image.fromarray(pixels, "RGB")
    image.thumbnail((side, side))
    return image
