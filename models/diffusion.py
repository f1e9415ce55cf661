"""Compact pixel-space conditional inpainting diffusion (trained by the project).

A diffusers ``UNet2DModel`` predicts noise from (noisy RGB, masked RGB, mask) = 7 channels.
DDPM training; DDIM (default) or DPM-Solver++ sampling in few steps. Pretrained Stable Diffusion inpainting is
used instead when configured (see ``stager.backends.diffusion``).
"""

from __future__ import annotations

import numpy as np
import torch


def build_unet(res: int = 64, width: int = 32):
    """The compact UNet: three levels (w, 2w, 2w), attention at the lowest."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=res, in_channels=7, out_channels=3, layers_per_block=1,
        block_out_channels=(width, 2 * width, 2 * width),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8, attention_head_dim=8)


def train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")


def sample_scheduler(kind: str = "ddim"):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    cfg = dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    if kind == "ddim":
        return DDIMScheduler(**cfg, clip_sample=True)
    # Pixel space: the predicted x0 must stay in [-1, 1]. At the cosine schedule's noisy end
    # alpha_bar is ~0 and an unclipped x0 estimate explodes, so threshold it (like DDIM's clip).
    return DPMSolverMultistepScheduler(**cfg, algorithm_type="dpmsolver++", thresholding=True,
                                       sample_max_value=1.0)


def condition(img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(masked image in [-1, 1] with the hole at 0, mask) -> (B, 4, H, W)."""
    return torch.cat([img * (1 - mask), mask], 1)


@torch.no_grad()
def sample(unet, rgb: np.ndarray, mask: np.ndarray, steps: int = 20, seed: int = 0,
           scheduler: str = "ddim", init: np.ndarray | None = None,
           strength: float = 1.0) -> np.ndarray:
    """Inpaint one ``res x res`` uint8 RGB image; known pixels are kept.

    With ``init`` (a first fill, uint8 like ``rgb``) and ``strength`` < 1, sampling starts
    from ``init`` noised to that fraction of the schedule (SDEdit): the init gives the low
    frequencies and the model adds the rest in ``steps * strength`` steps."""
    sched = sample_scheduler(scheduler)
    sched.set_timesteps(steps)
    img = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    cond = condition(img, m)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(img.shape, generator=gen)
    timesteps = sched.timesteps
    if init is not None and strength < 1.0:
        start = int(round(len(timesteps) * (1.0 - max(strength, 0.05))))
        timesteps = timesteps[start:]
        x0 = torch.from_numpy(init.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        x = sched.add_noise(x0, noise, timesteps[:1])
    else:
        x = noise * sched.init_noise_sigma
    for t in timesteps:
        eps = unet(torch.cat([sched.scale_model_input(x, t), cond], 1), t).sample
        x = sched.step(eps, t, x).prev_sample
    out = img * (1 - m) + x.clamp(-1, 1) * m
    return ((out[0].permute(1, 2, 0).numpy() + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
