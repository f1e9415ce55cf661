"""Building blocks shared by the networks."""

from __future__ import annotations

import torch
from torch import nn


def sn(module: nn.Module, use: bool = True) -> nn.Module:
    """Spectral normalisation (Miyato et al.) when ``use``."""
    return nn.utils.spectral_norm(module) if use else module


class ResnetBlock(nn.Module):
    """Two 3x3 convs with a dilated first conv and a skip; reflection padding (EdgeConnect)."""

    def __init__(self, dim: int, dilation: int = 2, spectral: bool = False):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            sn(nn.Conv2d(dim, dim, 3, dilation=dilation, bias=not spectral), spectral),
            nn.InstanceNorm2d(dim, track_running_stats=False),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            sn(nn.Conv2d(dim, dim, 3, bias=not spectral), spectral),
            nn.InstanceNorm2d(dim, track_running_stats=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchDiscriminator(nn.Module):
    """Fully convolutional PatchGAN. ``n_layers=3`` gives the 70x70 receptive field of pix2pix.

    ``forward`` returns (logits map, list of intermediate features for feature matching).
    """

    def __init__(self, in_ch: int, width: int = 64, n_layers: int = 3, spectral: bool = False,
                 norm: bool = True):
        super().__init__()
        layers = [nn.Sequential(sn(nn.Conv2d(in_ch, width, 4, 2, 1), spectral),
                                nn.LeakyReLU(0.2, True))]
        ch = width
        for i in range(1, n_layers + 1):
            nxt = width * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            block = [sn(nn.Conv2d(ch, nxt, 4, stride, 1, bias=not norm), spectral)]
            if norm:
                block.append(nn.InstanceNorm2d(nxt) if spectral else nn.BatchNorm2d(nxt))
            block.append(nn.LeakyReLU(0.2, True))
            layers.append(nn.Sequential(*block))
            ch = nxt
        layers.append(nn.Sequential(sn(nn.Conv2d(ch, 1, 4, 1, 1), spectral)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor):
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return x, feats[:-1]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
