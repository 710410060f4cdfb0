"""Encoders: the first stage of the built-in network, one observation in, one feature vector out.

Every encoder is an ``nn.Module`` with ``out_features`` and ``encoder(obs) -> features``: observations
``(B, *obs_shape)`` as the environment gives them (uint8 pixels included) -> float features
``(B, out_features)``. The network puts its heads on the features (:class:`policygrad.core.networks.
ActorCritic`); Dict/Tuple observations plug in at this seam (one encoder per part, concatenated:
:mod:`policygrad.core.structured`), and so will a recurrent core.

- ``mlp``: flatten, then Linear + activation per hidden size (:class:`MLPEncoder`); vectors.
- ``nature``: the Nature CNN (Mnih et al. 2015): 32 8x8/4, 64 4x4/2, 64 3x3/1 convolutions, then 512
  units; for images of at least 36x36 pixels (Atari's 84x84 frames: 3136 features before the 512).
- ``impala``: the IMPALA ResNet (Espeholt et al. 2018): three stages of (16, 32, 32) channels, each a
  3x3 convolution, a 3x3/2 max-pool and two residual blocks, then 256 units; any image size.
- ``auto``: ``nature`` for images (:func:`policygrad.core.images.is_image_space`), ``mlp`` otherwise.

Image encoders scale pixels (uint8 / 255) and move the channels first inside ``forward``, so rollouts,
checkpoints and evaluation carry the environment's own arrays. The convolutions run on a
channels-last (NHWC) tensor: an HWC image permuted to NCHW already has those strides (no copy), and
oneDNN's convolutions are faster so on the CPU (benchmarks/results/pixels_layout.md).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import torch
from torch import nn

from policygrad.core.config import ENCODERS
from policygrad.core.errors import UserInputError
from policygrad.core.images import ImageLayout, image_layout, is_image_space

ACTIVATION_LAYERS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

_FUNCTIONAL = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu}


def activation_function(activation: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation as a plain function where there is one (a module call costs more than tanh)."""
    return _FUNCTIONAL.get(type(activation), activation)


def run_mlp(body: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``body(x)`` without a module call per layer (on small networks the calls cost more than the
    arithmetic). The numbers are exactly ``body(x)``'s."""
    for layer in body:
        x = (nn.functional.linear(x, layer.weight, layer.bias) if type(layer) is nn.Linear
             else activation_function(layer)(x))
    return x


class MLPEncoder(nn.Sequential):
    """Linear + activation per hidden size on the flattened observation; ``out_features`` is the last
    width. Its layers are its items (``encoder[0]`` is the first Linear), as the speed paths read them."""

    out_features: int

    def __init__(self, in_features: int, hidden_sizes: tuple[int, ...], activation: str) -> None:
        layers: list[nn.Module] = []
        for width in hidden_sizes:
            layers += [nn.Linear(in_features, width), ACTIVATION_LAYERS[activation]()]
            in_features = width
        super().__init__(*layers)
        self.out_features = in_features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if obs.dtype == torch.float32 and obs.dim() == 2 else obs.float().reshape(obs.shape[0], -1)
        return run_mlp(self, x)


class ImageEncoder(nn.Sequential):
    """A convolutional encoder: ``forward`` turns pixels as the environment gives them (any dtype, CHW or
    HWC as ``layout`` says) into a scaled float NCHW tensor in channels-last memory, then runs its layers."""

    out_features: int

    def __init__(self, layout: ImageLayout, *layers: nn.Module) -> None:
        super().__init__(*layers)
        self.layout = layout

    def pixels(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, *obs_shape)`` -> scaled float ``(B, C, H, W)`` with channels-last strides (bf16 under autocast)."""
        layout = self.layout
        x = obs if layout.channels_first else obs.permute(0, 3, 1, 2)  # HWC: a view, already NHWC in memory
        # Reorder before converting: a CHW frame's copy into channels-last moves uint8 bytes, a quarter of
        # the floats' (1.7x faster for 256 Atari frames, measured); HWC frames need no copy.
        x = x.contiguous(memory_format=torch.channels_last)
        # Under precision=bf16's autocast (core/precision.py) straight to bf16, which the first convolution
        # would otherwise cast the float32 frames to: one pass over the frames fewer (-10% on an update step)
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else torch.float32
        scaled = x.to(dtype)  # keeps the strides
        if layout.divisor != 1.0:
            # in place only on the copy .to() made (uint8 in); never on the caller's float tensor
            scaled = scaled.div_(layout.divisor) if scaled is not x else scaled / layout.divisor
        return scaled

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return super().forward(self.pixels(obs))


def _conv_out(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class NatureCNN(ImageEncoder):
    """Mnih et al. 2015 (Nature), "Human-level control through deep reinforcement learning": three
    convolutions with ReLU, then ``features`` units with ReLU (SB3's ``NatureCNN``, CleanRL's ``ppo_atari``)."""

    def __init__(self, layout: ImageLayout, features: int = 512) -> None:
        h, w = layout.height, layout.width
        for kernel, stride in ((8, 4), (4, 2), (3, 1)):
            h, w = _conv_out(h, kernel, stride), _conv_out(w, kernel, stride)
        if h < 1 or w < 1:
            raise UserInputError(f"encoder='nature' needs images of at least 36x36 pixels (its three convolutions "
                                 f"shrink 36 to 1); these are {layout.height}x{layout.width}: use "
                                 "encoder='impala' (any size) or 'mlp'")
        super().__init__(
            layout,
            nn.Conv2d(layout.channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * h * w, features), nn.ReLU(),
        )
        self.out_features = features


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(relu(x)))), 3x3 convolutions keeping the channels (IMPALA's block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ImpalaCNN(ImageEncoder):
    """Espeholt et al. 2018, "IMPALA", Fig. 3 (right), as in CleanRL's ``ppo_procgen``: per stage a 3x3
    convolution, a 3x3 max-pool of stride 2 and two residual blocks; then ReLU and ``features`` units
    with ReLU. Each stage halves the image (rounding up), so any size works."""

    def __init__(self, layout: ImageLayout, channels: tuple[int, ...] = (16, 32, 32), features: int = 256) -> None:
        layers: list[nn.Module] = []
        c, h, w = layout.channels, layout.height, layout.width
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1),
                       ResidualBlock(out), ResidualBlock(out)]
            c, h, w = out, _conv_out(h, 3, 2, 1), _conv_out(w, 3, 2, 1)
        layers += [nn.Flatten(), nn.ReLU(), nn.Linear(c * h * w, features), nn.ReLU()]
        super().__init__(layout, *layers)
        self.out_features = features


def resolve_encoder(observation_space: gym.Space, encoder: str) -> str:
    """The encoder ``encoder`` means for ``observation_space``: ``auto`` is ``nature`` for an image,
    ``mlp`` otherwise; the others as named (UserInputError for an unknown name)."""
    if encoder not in ENCODERS:
        raise UserInputError(f"encoder={encoder!r} is invalid: expected one of {' | '.join(ENCODERS)}")
    if encoder == "auto":
        return "nature" if is_image_space(observation_space) else "mlp"
    return encoder


def make_image_encoder(kind: str, observation_space: gym.Space, layout: str = "auto",
                       asked: str = "auto") -> ImageEncoder:
    """A fresh ``kind`` (``nature`` | ``impala``) encoder for ``observation_space`` laid out as ``layout``
    says (UserInputError when the space is no image, is ambiguous or too small). ``asked``: the
    ``encoder`` value the user gave, for the messages."""
    shape = image_layout(observation_space, layout, asked if asked != "auto" else kind)
    if kind == "nature":
        return NatureCNN(shape)
    if kind == "impala":
        return ImpalaCNN(shape)
    raise UserInputError(f"encoder={kind!r} is not an image encoder: expected nature | impala")
