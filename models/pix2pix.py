"""pix2pix (Isola et al. 2017): U-Net generator with skips and a 70x70 PatchGAN.

Vanilla staging: input = the product on white at its place, output = a whole staged scene.
Loss: GAN (BCE on patch logits) + 100 x L1; Adam 2e-4, betas (0.5, 0.999).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import PatchDiscriminator


class UNetBlock(nn.Module):
    """One level of the U-Net: down conv, the inner levels, up conv, skip concat."""

    def __init__(self, outer: int, inner: int, in_ch: int | None = None, sub: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        in_ch = in_ch or outer
        down = [nn.Conv2d(in_ch, inner, 4, 2, 1, bias=False)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            model = down + [sub] + up
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                  nn.BatchNorm2d(outer)]
            model = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False),
                  nn.BatchNorm2d(outer)]
            model = ([nn.LeakyReLU(0.2, True)] + down + [nn.BatchNorm2d(inner), sub] + up
                     + ([nn.Dropout(0.5)] if dropout else []))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """unet_256 structure at ``num_downs=8`` (input side must be a multiple of 2**num_downs).

    ``x``: ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 3, H, W)`` in [-1, 1].
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 3, width: int = 64, num_downs: int = 8):
        super().__init__()
        w = width
        block = UNetBlock(w * 8, w * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UNetBlock(w * 8, w * 8, sub=block, dropout=True)
        block = UNetBlock(w * 4, w * 8, sub=block)
        block = UNetBlock(w * 2, w * 4, sub=block)
        block = UNetBlock(w, w * 2, sub=block)
        self.net = UNetBlock(out_ch, w, in_ch=in_ch, sub=block, outermost=True)
        self.config = {"in_ch": in_ch, "out_ch": out_ch, "width": width, "num_downs": num_downs}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_discriminator(width: int = 64) -> PatchDiscriminator:
    """70x70 PatchGAN on (input, output) pairs: 6 input channels."""
    return PatchDiscriminator(6, width, n_layers=3)


def generator_loss(disc, inp, fake, real, l1_weight: float = 100.0):
    """GAN + L1 for the generator; returns (total, parts dict)."""
    logits, _ = disc(torch.cat([inp, fake], 1))
    gan = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    l1 = (fake - real).abs().mean()
    return gan + l1_weight * l1, {"g_gan": gan.item(), "g_l1": l1.item()}


def discriminator_loss(disc, inp, fake, real):
    lr, _ = disc(torch.cat([inp, real], 1))
    lf, _ = disc(torch.cat([inp, fake.detach()], 1))
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = 0.5 * (bce(lr, torch.ones_like(lr)) + bce(lf, torch.zeros_like(lf)))
    return loss, {"d": loss.item()}
