"""When an observation is an image, and how its axes are laid out: the rule, stated once.

**An image** is a Box of rank 3 whose values are pixels: ``uint8`` (any bounds, necessarily within
[0, 255]; the network divides by 255) or floating point with bounds inside [0, 1] (used as they are).
Anything else (a rank-3 float Box with wider bounds, a rank-2 grey frame without a channel axis) is
not an image: ``encoder="auto"`` gives it the MLP, and asking for a convolutional encoder on it is a
one-line error saying why.

**The layout** is channels-first (CHW, PyTorch's) or channels-last (HWC, what most environments
render). The channel axis is the first or the last, whichever is strictly smaller than both other
axes: ``(4, 84, 84)`` is CHW, ``(84, 84, 3)`` and ``(10, 10, 1)`` are HWC (SB3's
``is_image_space_channels_first`` makes the same choice by the smallest axis). Any other shape, e.g.
``(10, 10, 10)`` or ``(3, 10, 3)``, is ambiguous, and ``image_layout="chw"`` or ``"hwc"`` must say
which; the field also overrides the rule. The network transposes inside itself, so rollouts,
checkpoints and evaluation all see the environment's own arrays.

**Storage**: a uint8 image is stored as uint8 from the environment to the rollout buffers (a
quarter of float32's memory: 8 envs x 128 steps x 4x84x84 is 29 MB, not 116 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from policygrad.core.config import IMAGE_LAYOUTS
from policygrad.core.errors import UserInputError


@dataclass(frozen=True)
class ImageLayout:
    """An image space's axes and scale: ``channels_first`` (CHW, else HWC), the sizes, and what the
    network divides pixels by (255 for uint8, 1 for floats already in [0, 1])."""

    channels_first: bool
    channels: int
    height: int
    width: int
    divisor: float


def _pixel_bounds(space: gym.spaces.Box) -> bool:
    """uint8, or floating point with finite bounds inside [0, 1]."""
    if space.dtype == np.uint8:
        return True
    return (np.issubdtype(space.dtype, np.floating) and bool(np.all(space.low >= 0.0))
            and bool(np.all(space.high <= 1.0)))


def is_image_space(space: gym.Space) -> bool:
    """Whether ``space`` is an image by the rule above (rank-3 Box of uint8, or of floats in [0, 1])."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3 and _pixel_bounds(space)


def channels_first_by_rule(shape: tuple[int, ...]) -> bool | None:
    """True (CHW) / False (HWC) by the rule above, None when the shape is ambiguous."""
    first, middle, last = shape
    if first < middle and first < last:
        return True
    if last < middle and last < first:
        return False
    return None


def image_layout(space: gym.Space, layout: str = "auto", encoder: str = "auto") -> ImageLayout:
    """The layout of image ``space``; UserInputError (naming ``encoder`` or ``image_layout``) when
    ``space`` is not an image or its layout is ambiguous under ``layout="auto"``. ``encoder`` is only
    used in the messages (which encoder asked for an image)."""
    wanted = f"encoder={encoder!r} needs image observations (a Box of rank 3: uint8 pixels, or floats in [0, 1])"
    if not isinstance(space, gym.spaces.Box):
        raise UserInputError(f"{wanted}; {space} is not a Box: use encoder='mlp'")
    if len(space.shape) != 3:
        raise UserInputError(f"{wanted}; this observation has shape {space.shape} (rank {len(space.shape)}): "
                             "add a channel axis (e.g. a grey frame (84, 84) as (84, 84, 1)) or use encoder='mlp'")
    if not _pixel_bounds(space):
        raise UserInputError(f"{wanted}; this {space.dtype} Box has bounds [{np.min(space.low)}, "
                             f"{np.max(space.high)}]: rescale it to [0, 1] (or give uint8 pixels) or use encoder='mlp'")
    if layout not in IMAGE_LAYOUTS:
        raise UserInputError(f"image_layout={layout!r} is invalid: expected one of {' | '.join(IMAGE_LAYOUTS)}")
    shape = tuple(int(n) for n in space.shape)
    channels_first = layout == "chw" if layout != "auto" else channels_first_by_rule(shape)
    if channels_first is None:
        raise UserInputError(f"image_layout='auto' cannot tell the channel axis of the image shape {shape} (the "
                             "channel axis is the first or last, strictly smaller than the others): set "
                             "image_layout='chw' (channels first) or 'hwc' (channels last)")
    c, h, w = shape if channels_first else (shape[2], shape[0], shape[1])
    return ImageLayout(channels_first, c, h, w, 255.0 if space.dtype == np.uint8 else 1.0)


def storage_dtype(space: gym.Space) -> torch.dtype:
    """The dtype observations of ``space`` are kept in between the environment and the network:
    uint8 for uint8 images, float32 for everything else (as the MLP takes it)."""
    return torch.uint8 if is_image_space(space) and space.dtype == np.uint8 else torch.float32
