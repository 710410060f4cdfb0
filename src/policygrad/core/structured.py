"""Structured observations: Gymnasium ``Dict`` and ``Tuple`` spaces (nested), as flat dicts of tensors.

**The representation.** A structured observation travels as a flat ``dict`` from a part's *path* to
its tensor: a Dict key is its path (``"image"``), a Tuple index its decimal (``"0"``), and nested parts
join with ``/`` (``"sensors/0"``). Every part keeps its storage dtype (uint8 images stay uint8,
:func:`policygrad.core.images.storage_dtype`), batch axes first: ``(B, *part_shape)`` for a batch,
``(T, N, *part_shape)`` in a rollout. An action mask travels the same way, under :data:`MASK_KEY`
(:mod:`policygrad.core.masks`); with a mask, a plain observation rides under :data:`OBS_KEY`.
A flat dict (not a nest) keeps every helper here one loop, and safetensors checkpoints take its keys
as they are.

**The tree helpers** (:func:`obs_map`, :func:`obs_index`, :func:`obs_rows`, :func:`obs_stack`, :func:`obs_cat`,
:func:`assign_obs`) apply one tensor operation to a plain tensor or to every part of a dict, so the
rollout, the losses and the checkpoints handle both with one line.

**The encoder** (:class:`StructuredEncoder`): one encoder per part (the MLP for vectors and for
one-hot ``Discrete``/``MultiDiscrete`` parts, the image encoders of :mod:`policygrad.core.encoders`
for images), their features concatenated: ``encoder(obs) -> (B, out_features)`` like every encoder,
so the heads (and a recurrent core) sit after the concatenation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.core.encoders import ImageEncoder, MLPEncoder, make_image_encoder
from policygrad.core.errors import UserInputError
from policygrad.core.images import is_image_space, storage_dtype
from policygrad.core.normalization import ObservationNormalizer

MASK_KEY = "action_mask"  # the mask's key in an observation dict (PettingZoo's name for it)
OBS_KEY = "obs"  # a plain observation's key when a mask travels with it
SEPARATOR = "/"

# A tensor, or a dict of tensors by path. Typed Any: the code written for tensors (the speed paths,
# the diagnostics) receives plain tensors only, and a union would need a cast at each of its uses.
Observation = Any
PART_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)


def is_structured(space: gym.Space) -> bool:
    """Whether ``space`` is a Dict or a Tuple of parts."""
    return isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple))


def _children(space: gym.Space) -> list[tuple[str, gym.Space]]:
    if isinstance(space, gym.spaces.Dict):
        return [(str(key), sub) for key, sub in space.spaces.items()]
    if isinstance(space, gym.spaces.Tuple):
        return [(str(i), sub) for i, sub in enumerate(space.spaces)]
    raise RuntimeError(f"{space} has no parts (not a Dict or Tuple)")


def space_parts(space: gym.Space, prefix: str = "") -> dict[str, gym.Space]:
    """The leaf spaces of a Dict/Tuple ``space`` by path (nested ones flattened), in the space's order."""
    parts: dict[str, gym.Space] = {}
    for key, sub in _children(space):
        path = prefix + key
        if is_structured(sub):
            parts.update(space_parts(sub, path + SEPARATOR))
        else:
            parts[path] = sub
    return parts


def feature_parts(space: gym.Space) -> dict[str, gym.Space]:
    """The parts the encoder reads: every leaf but a top-level :data:`MASK_KEY` (a mask, not a feature);
    UserInputError naming the part when one is of a kind no encoder takes, or when none is left."""
    parts = {path: sub for path, sub in space_parts(space).items() if path != MASK_KEY}
    for path, sub in parts.items():
        if not isinstance(sub, PART_SPACES) or sub.shape is None:
            raise UserInputError(f"observation part {path!r} is {sub}: the encoders take Box, Discrete, MultiDiscrete "
                                 f"and MultiBinary parts (nested in Dict/Tuple), not {type(sub).__name__}")
    if not parts:
        raise UserInputError(f"observation space {space} has no part to encode (only {MASK_KEY!r})")
    return parts


def flatten_obs(obs: Any, space: gym.Space, prefix: str = "") -> dict[str, Any]:
    """An observation of Dict/Tuple ``space`` (or a batch of them, as a vector env gives it: the same
    nest with batched leaves) as a flat dict by path; NumPy arrays stay as they are."""
    flat: dict[str, Any] = {}
    for key, sub in _children(space):
        path = prefix + key
        value = obs[key] if isinstance(space, gym.spaces.Dict) else obs[int(key)]
        if is_structured(sub):
            flat.update(flatten_obs(value, sub, path + SEPARATOR))
        else:
            flat[path] = value
    return flat


def unflatten_obs(flat: dict[str, Any], space: gym.Space, prefix: str = "") -> Any:
    """:func:`flatten_obs` undone: the nest of ``space`` (dicts for Dict, tuples for Tuple) from a flat dict."""
    items = []
    for key, sub in _children(space):
        path = prefix + key
        if is_structured(sub):
            items.append((key, unflatten_obs(flat, sub, path + SEPARATOR)))
        elif path in flat:
            items.append((key, flat[path]))
    if isinstance(space, gym.spaces.Dict):
        return dict(items)
    return tuple(value for _, value in items)


def part_dtype(space: gym.Space) -> torch.dtype:
    """How a part is stored: uint8 images as uint8, everything else float32 (as the MLP takes it)."""
    return storage_dtype(space)


def obs_map(fn: Callable[[torch.Tensor], torch.Tensor], obs: Observation) -> Observation:
    """``fn`` on a tensor, or on every part of an observation dict."""
    if isinstance(obs, dict):
        return {key: fn(value) for key, value in obs.items()}
    return fn(obs)


def obs_index(obs: Observation, index: Any) -> Observation:
    """``obs[index]`` (rows: an index tensor, a slice, a bool mask), part by part for dicts."""
    if isinstance(obs, dict):
        return {key: value[index] for key, value in obs.items()}
    return obs[index]


def obs_rows(obs: Observation) -> int:
    """The batch size (first axis) of an observation or observation dict."""
    return next(iter(obs.values())).shape[0] if isinstance(obs, dict) else obs.shape[0]


def obs_stack(items: list[Observation]) -> Observation:
    """``torch.stack`` of a list of observations (or of observation dicts, part by part)."""
    if isinstance(items[0], dict):
        return {key: torch.stack([item[key] for item in items]) for key in items[0]}
    return torch.stack(items)


def obs_cat(items: list[Observation]) -> Observation:
    """``torch.cat`` along the first axis of observations (or of observation dicts, part by part)."""
    if isinstance(items[0], dict):
        return {key: torch.cat([item[key] for item in items]) for key in items[0]}
    return torch.cat(items)


def assign_obs(buffer: Observation, index: Any, value: Observation) -> None:
    """``buffer[index] = value``, part by part for dicts."""
    if isinstance(buffer, dict):
        for key, part in buffer.items():
            part[index] = value[key]
    else:
        buffer[index] = value


def obs_rows_view(buffer: Observation) -> list[Observation]:
    """The first-axis rows of ``buffer`` as views (``buffer.unbind(0)``, part by part)."""
    if isinstance(buffer, dict):
        rows = {key: part.unbind(0) for key, part in buffer.items()}
        return [{key: rows[key][t] for key in rows} for t in range(next(iter(buffer.values())).shape[0])]
    return list(buffer.unbind(0))


def named_tensors(prefix: str, obs: Observation) -> dict[str, torch.Tensor]:
    """An observation as named tensors for a checkpoint: ``{prefix: obs}``, or ``{prefix/path: part}``."""
    if isinstance(obs, dict):
        return {f"{prefix}{SEPARATOR}{key}": value for key, value in obs.items()}
    return {prefix: obs}


def from_named(prefix: str, tensors: dict[str, torch.Tensor], like: Observation,
               check: Callable[[dict[str, torch.Tensor], str, torch.Tensor], torch.Tensor]) -> Observation:
    """:func:`named_tensors` read back, each tensor checked against ``like``'s by ``check(tensors, name, like)``."""
    if isinstance(like, dict):
        return {key: check(tensors, f"{prefix}{SEPARATOR}{key}", value) for key, value in like.items()}
    return check(tensors, prefix, like)


def zeros_like_space(space: gym.Space, rows: int, device: torch.device | str | None = None) -> Observation:
    """``rows`` zero observations of ``space`` in their storage dtypes (a dict for Dict/Tuple spaces)."""
    if is_structured(space):
        return {path: torch.zeros((rows, *(sub.shape or ())), dtype=part_dtype(sub), device=device)
                for path, sub in feature_parts(space).items()}
    return torch.zeros((rows, *(space.shape or ())), dtype=torch.float32, device=device)


# -- the encoder -------------------------------------------------------------------------------------
NATURE_MIN_SIZE = 36  # the Nature CNN's three convolutions need at least 36x36 pixels


def part_kind(space: gym.Space, encoder: str) -> str:
    """The encoder a part gets: an image encoder for images (the one asked for; under ``auto`` the
    Nature CNN from 36x36 pixels and IMPALA's ResNet, which takes any size, below: a Dict's image is
    often a small map or minimap; ``mlp`` flattens images too), the MLP for everything else."""
    if not is_image_space(space) or encoder == "mlp":
        return "mlp"
    if encoder != "auto":
        return encoder
    return "nature" if min(sorted(space.shape or ())[1:] or (0,)) >= NATURE_MIN_SIZE else "impala"


def part_inputs(space: gym.Space) -> int:
    """Inputs the MLP of a non-image part takes: flattened Box/MultiBinary; one-hot (Multi)Discrete."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(np.prod(space.shape or ()))


class StructuredEncoder(nn.Sequential):
    """One encoder per part of a Dict/Tuple observation, features concatenated in the space's order.

    Shapes: ``obs`` ``{path: (B, *part_shape)}`` -> ``(B, out_features)``, the sum of the parts'
    features. Box vectors (and MultiBinary) are flattened into an MLP; Discrete and MultiDiscrete parts
    are one-hot (per dimension) into an MLP; images go through ``encoder`` (``nature`` | ``impala``;
    ``auto``: :func:`part_kind`) with their own layout rule (``image_layout``). The heads sit on the
    concatenation: parts combine additively in the logits (a recurrent core, or your own network,
    mixes them further).
    """

    def __init__(self, space: gym.Space, hidden_sizes: tuple[int, ...], activation: str, encoder: str = "auto",
                 image_layout: str = "auto") -> None:
        spaces = feature_parts(space)
        # its items are the parts' encoders, in the space's order (ModuleDict keys cannot hold "."): a
        # Sequential only as a container, forward is below
        parts: list[MLPEncoder | ImageEncoder] = []
        kinds: list[str] = []
        for path, sub in spaces.items():
            kind = part_kind(sub, encoder)
            kinds.append(kind)
            if kind == "mlp":
                parts.append(MLPEncoder(part_inputs(sub), hidden_sizes, activation))
            else:
                try:
                    parts.append(make_image_encoder(kind, sub, image_layout, encoder))
                except UserInputError as exc:
                    raise UserInputError(f"observation part {path!r}: {exc}") from None
        super().__init__(*parts)
        self.spaces, self.paths, self.kinds = spaces, list(spaces), kinds
        self.out_features = sum(part.out_features for part in parts)

    def part_input(self, path: str, x: torch.Tensor) -> torch.Tensor:
        """What part ``path``'s encoder takes: one-hot for (Multi)Discrete, the tensor itself otherwise."""
        sub = self.spaces[path]
        if isinstance(sub, gym.spaces.Discrete):
            return nn.functional.one_hot(x.long() - int(sub.start), int(sub.n)).float()
        if isinstance(sub, gym.spaces.MultiDiscrete):
            starts = torch.as_tensor(np.asarray(sub.start).reshape(-1), device=x.device)
            index = x.long().reshape(x.shape[0], -1) - starts
            return torch.cat([nn.functional.one_hot(index[:, i], int(n)).float()
                              for i, n in enumerate(sub.nvec.reshape(-1))], dim=-1)
        return x

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        missing = [path for path in self.paths if path not in obs]
        if missing:
            raise UserInputError(f"observation has no part {missing[0]!r}: expected parts {self.paths}")
        return torch.cat([part(self.part_input(path, obs[path])) for path, part in zip(self.paths, self)], dim=-1)


def encoder_part_kinds(space: gym.Space, encoder: str) -> dict[str, str]:
    """Each part's encoder kind, for messages and checks (builds nothing)."""
    return {path: part_kind(sub, encoder) for path, sub in feature_parts(space).items()}


class StructuredNormalizer(nn.Module):
    """Observation normalization per part: running statistics for each Box part that is not an image
    (images are skipped, not refused: the image encoder scales pixels itself, and refusing would make
    normalize_obs unusable for every image-plus-vector observation; Discrete parts are one-hot and
    need none). ``update`` and ``forward`` take observation dicts; other parts pass through."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        self.paths = [path for path, sub in feature_parts(space).items()
                      if isinstance(sub, gym.spaces.Box) and not is_image_space(sub)]
        self.normalizers = nn.ModuleList(ObservationNormalizer(feature_parts(space)[p].shape or ()) for p in self.paths)

    def update(self, obs: dict[str, torch.Tensor]) -> None:
        for path, normalizer in zip(self.paths, self.normalizers):
            cast(ObservationNormalizer, normalizer).update(obs[path])

    def forward(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(obs)
        for path, normalizer in zip(self.paths, self.normalizers):
            out[path] = normalizer(obs[path].float())
        return out
