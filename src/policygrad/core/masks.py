"""Action masks: reading them from the environment, and the distributions that obey them.

**Three conventions**, tried in this order when the environment is made (``action_masking="auto"``):

- ``observation["action_mask"]``: a key of a Dict observation (PettingZoo's convention). The key is a
  mask, never a feature: the encoders skip it (with ``action_masking="off"`` too).
- ``info["action_mask"]``: Gymnasium's convention (``Taxi-v4``), from ``reset`` and every ``step``.
- ``env.action_masks()``: a method of the environment (SB3-contrib's ``MaskablePPO`` convention),
  called after ``reset`` and every ``step``.

A mask is one flag per action, ``True``/1 allowed: ``(n,)`` for ``Discrete(n)``, ``(sum(nvec),)`` for
``MultiDiscrete(nvec)`` (each dimension's flags side by side, as SB3-contrib lays them out); bool or
0/1 integers. A mask of another shape or dtype, or masks with a Box or MultiBinary action space, are a
UserInputError (exit 2); a step where no action is allowed is a :class:`NoActionAllowedError` naming
the copy and the step. A step that only resets a copy (NEXT_STEP autoreset) ignores its action, so its
mask is taken as all-allowed (a terminal state may allow nothing).

**Where masks go.** :class:`ObservationAdapter` (used by :class:`policygrad.core.envs.VecEnv`) puts the
mask into the observation dict under ``"action_mask"`` (:mod:`policygrad.core.structured`), so it is
stored with the rollout, indexed with the minibatches and checkpointed with the next observation
without any code of its own: the update uses exactly the masks the policy acted under. The networks
split it off (:func:`split_mask`) and hand it to :func:`masked_distribution`.

**The maths.** Masked logits are set to ``MASKED_LOGIT`` (-1e9): their probabilities underflow to
exactly 0, so sampling, the mode, log-probabilities (normalised over the allowed actions), the
entropy (over the allowed actions; 0 log 0 = 0) and PPO's ratio statistics all see the allowed actions
only, and the masked logits get no gradient. A finite value rather than -inf keeps every operation
finite (SB3-contrib uses -1e8 likewise).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from policygrad.core.distributions import (
    ActionDistribution,
    ActionHead,
    CategoricalDistribution,
    CategoricalHead,
    MultiCategoricalHead,
)
from policygrad.core.errors import TrainingError, UserInputError
from policygrad.core.structured import (
    MASK_KEY,
    OBS_KEY,
    Observation,
    flatten_obs,
    is_structured,
    part_dtype,
    space_parts,
)

MASKING_MODES = ("auto", "off")
MASKED_LOGIT = -1e9
SOURCES = {"observation": 'observation["action_mask"]', "info": 'info["action_mask"]',
           "method": "env.action_masks()"}


class NoActionAllowedError(TrainingError):
    """An environment's mask allowed no action at a step that needs one."""


# -- the mode in effect ------------------------------------------------------------------------------
_MASKING: contextvars.ContextVar[str] = contextvars.ContextVar("action_masking", default="auto")


@contextlib.contextmanager
def masking_for(mode: str) -> Iterator[None]:
    """Within this context every VecEnv made reads masks (``auto``) or not (``off``): set by the entry
    points around a run (as :func:`policygrad.core.envs.env_kwargs_for`), so collectors need no parameter."""
    if mode not in MASKING_MODES:
        raise UserInputError(f"action_masking={mode!r} is invalid: expected one of {' | '.join(MASKING_MODES)}")
    token = _MASKING.set(mode)
    try:
        yield
    finally:
        _MASKING.reset(token)


def current_masking() -> str:
    return _MASKING.get()


# -- reading masks -----------------------------------------------------------------------------------
def mask_width(action_space: gym.Space) -> int | None:
    """Flags per mask for ``action_space`` (None: a space masks do not apply to)."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return None


def _method_available(env: gym.vector.VectorEnv) -> bool:
    if not isinstance(env, gym.vector.SyncVectorEnv):
        return False
    try:
        return callable(env.envs[0].get_wrapper_attr("action_masks"))
    except AttributeError:
        return False


def detect_source(env: gym.vector.VectorEnv, infos: dict[str, Any]) -> str | None:
    """Which convention ``env`` gives masks by (see the module), from its spaces, the infos of its
    reset and its methods; None when it gives none."""
    space = env.single_observation_space
    if isinstance(space, gym.spaces.Dict) and MASK_KEY in space.spaces:
        return "observation"
    if MASK_KEY in infos:
        return "info"
    if _method_available(env):
        return "method"
    return None


class ObservationAdapter:
    """Turns a vector env's observations (and infos) into what the network reads: a flat dict of parts
    by path (Dict/Tuple spaces), plus the mask under ``"action_mask"`` when masks are read; a plain
    observation with a mask rides under ``"obs"``. VecEnv makes one only for such environments: plain
    observations without masks stay plain arrays (and keep the fast paths)."""

    def __init__(self, env: gym.vector.VectorEnv, source: str | None) -> None:
        self.env, self.source = env, source
        self.space = env.single_observation_space
        self.action_space = env.single_action_space
        self.structured = is_structured(self.space)
        self.width = mask_width(self.action_space)
        if source is not None and self.width is None:
            raise UserInputError(f"the environment gives action masks ({SOURCES[source]}), which need Discrete or "
                                 f"MultiDiscrete actions; its action space is {self.action_space}: set "
                                 "action_masking=off")
        self.dtypes = ({path: part_dtype(sub) for path, sub in space_parts(self.space).items() if path != MASK_KEY}
                       if self.structured else {OBS_KEY: part_dtype(self.space)})
        self.nvec = ([int(n) for n in self.action_space.nvec.reshape(-1)]
                     if isinstance(self.action_space, gym.spaces.MultiDiscrete) else None)

    def arrays(self, obs: Any, infos: dict[str, Any], free_rows: np.ndarray | None,
               step: int) -> dict[str, np.ndarray]:
        """The observation dict (NumPy) of one vector step: ``free_rows`` ``(N,)`` marks the copies whose
        next action is ignored (they reset), whose masks are then all-allowed; ``step`` names the
        vector step in errors."""
        flat = flatten_obs(obs, self.space) if self.structured else {OBS_KEY: obs}
        raw = flat.pop(MASK_KEY, None)
        if self.source is None:
            return flat
        if self.source == "info":
            raw = self._from_info(infos)
        elif self.source == "method":
            if not isinstance(self.env, gym.vector.SyncVectorEnv):  # detect_source looks only there
                raise RuntimeError("the action_masks() convention needs a SyncVectorEnv")
            raw = np.stack([np.asarray(m) for m in self.env.call("action_masks")])
        flat[MASK_KEY] = self.checked(raw, free_rows, step)
        return flat

    def _from_info(self, infos: dict[str, Any]) -> np.ndarray:
        n = self.env.num_envs
        if MASK_KEY not in infos:  # a step without masks allows every action
            return np.ones((n, self.width or 0), dtype=bool)
        raw = infos[MASK_KEY]
        present = infos.get("_" + MASK_KEY)
        if present is not None and not np.all(present):
            full = np.ones((n, self.width or 0), dtype=bool)
            for i in np.flatnonzero(present):
                full[i] = np.asarray(raw[i])
            return full
        return raw

    def checked(self, raw: Any, free_rows: np.ndarray | None, step: int) -> np.ndarray:
        """``raw`` ``(N, width)`` as a bool array, checked (shape, dtype, 0/1, one allowed action)."""
        where = SOURCES[self.source or "info"]
        try:
            mask = np.asarray(raw)
        except ValueError as exc:
            raise UserInputError(f"{where} is not an array ({exc})") from None
        width, n = self.width, self.env.num_envs
        if mask.dtype.kind not in "bui":
            raise UserInputError(f"{where} has dtype {mask.dtype}: expected bool or integers 0/1 (one flag per "
                                 f"action of {self.action_space}, 1 = allowed)")
        if mask.shape != (n, width):
            raise UserInputError(f"{where} has shape {mask.shape[1:]}: expected ({width},) for the action space "
                                 f"{self.action_space} (one flag per action"
                                 f"{', every dimension side by side' if self.nvec else ''})")
        if mask.dtype.kind != "b":
            if not np.isin(mask, (0, 1)).all():
                raise UserInputError(f"{where} holds {np.unique(mask)[:6].tolist()}: expected 0/1 flags (or bools)")
            mask = mask.astype(bool)
        else:
            mask = mask.copy()  # the env may reuse its array
        if free_rows is not None and free_rows.any():
            mask[free_rows] = True
        chunks = np.split(mask, np.cumsum(self.nvec)[:-1], axis=1) if self.nvec else [mask]
        for d, chunk in enumerate(chunks):
            empty = np.flatnonzero(~chunk.any(axis=1))
            if empty.size:
                i = int(empty[0])
                dimension = f" in action dimension {d}" if self.nvec else ""
                raise NoActionAllowedError(f"environment {i} of {n} allows no action{dimension} at vector step "
                                           f"{step} ({where} is all False): a step needs at least one allowed "
                                           "action (or the episode should have ended)")
        return mask

    def tensors(self, arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
        """The observation dict as tensors in each part's storage dtype (the mask bool)."""
        out = {path: torch.as_tensor(np.asarray(arrays[path]), dtype=dtype, device=device)
               for path, dtype in self.dtypes.items()}
        if MASK_KEY in arrays:
            out[MASK_KEY] = torch.as_tensor(arrays[MASK_KEY], dtype=torch.bool, device=device)
        return out


def observation_adapter(env: gym.vector.VectorEnv, infos: dict[str, Any], masking: str) -> ObservationAdapter | None:
    """The adapter ``env`` needs (see :class:`ObservationAdapter`), or None for plain observations
    without masks. ``masking``: ``auto`` reads masks where the environment gives them; ``off`` never."""
    source = detect_source(env, infos) if masking == "auto" else None
    if source is None and not is_structured(env.single_observation_space):
        return None
    return ObservationAdapter(env, source)


# -- the networks' side ------------------------------------------------------------------------------
def split_mask(obs: Observation) -> tuple[Observation, torch.Tensor | None]:
    """An observation as the encoder reads it, and the action mask ``(B, width)`` travelling with it
    (None without one). A plain observation that only carried a mask comes back plain."""
    if type(obs) is not dict:  # the plain path: one type check
        return obs, None
    mask = obs.get(MASK_KEY)
    if mask is None:
        return obs, None
    rest = {key: value for key, value in obs.items() if key != MASK_KEY}
    if len(rest) == 1 and OBS_KEY in rest:
        return rest[OBS_KEY], mask
    return rest, mask


def strip_mask(obs: Observation) -> Observation:
    """:func:`split_mask` without the mask."""
    return split_mask(obs)[0]


class MaskedCategoricalDistribution(CategoricalDistribution):
    """A categorical over the allowed actions only: ``logits`` ``(B, n)`` already masked, ``mask``
    ``(B, n)`` bool. Sampling can never return a masked action: the inverse CDF's rounding sliver
    (see :class:`CategoricalDistribution`) goes to the last allowed action, not the last action."""

    def __init__(self, logits: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__(logits)
        self.mask = mask

    def _sample_index(self) -> torch.Tensor:
        cdf = self.log_pmf.exp().cumsum(-1)
        u = torch.rand((*cdf.shape[:-1], 1), dtype=cdf.dtype, device=cdf.device)
        index = torch.searchsorted(cdf, u, right=True).clamp_max_(cdf.shape[-1] - 1)
        allowed = self.mask.gather(-1, index)
        if bool(allowed.all()):
            return index
        positions = torch.arange(1, cdf.shape[-1] + 1, device=cdf.device)
        last_allowed = (self.mask * positions).argmax(-1, keepdim=True)
        return torch.where(allowed, index, last_allowed)


def masked_distribution(head: ActionHead, out: torch.Tensor, mask: torch.Tensor | None) -> ActionDistribution:
    """``head``'s distribution for its last-layer output ``out``, restricted to the actions ``mask``
    allows (``None``: unmasked, the head's own distribution)."""
    if mask is None:
        return head.distribution(out)
    mask = mask.to(torch.bool)
    if mask.shape != out.shape:
        raise UserInputError(f"action mask of shape {tuple(mask.shape)} does not fit the policy's outputs "
                             f"{tuple(out.shape)}")
    logits = out.masked_fill(~mask, MASKED_LOGIT)
    if isinstance(head, CategoricalHead):
        return MaskedCategoricalDistribution(logits, mask)
    if isinstance(head, MultiCategoricalHead):
        return head.distribution(logits)
    raise UserInputError(f"action masks need Discrete or MultiDiscrete actions, not a {type(head).__name__}: set "
                         "action_masking=off")


def single_env_mask(env: gym.Env, info: dict[str, Any]) -> np.ndarray | None:
    """The mask one (unvectorised) environment gives after a reset or step by the info or method
    convention (the observation's own key is read by :meth:`policygrad.Agent.act`); None without one."""
    if MASK_KEY in info:
        return np.asarray(info[MASK_KEY])
    try:
        method = env.get_wrapper_attr("action_masks")
    except AttributeError:
        return None
    return np.asarray(method()) if callable(method) else None
