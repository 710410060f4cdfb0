"""A trained policy you can act with, and loading one from a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.algos import algorithm
from policygrad.core.config import DEVICES, Config, UserTypeError, check_bool, check_int, reject_type
from policygrad.core.envs import env_kwargs_for, env_spaces
from policygrad.core.errors import UserInputError
from policygrad.core.masks import mask_width
from policygrad.core.networks import PolicyNetwork
from policygrad.core.recurrent import RecurrentActorCritic
from policygrad.core.runtime import resolve_device
from policygrad.core.structured import (
    MASK_KEY,
    OBS_KEY,
    feature_parts,
    flatten_obs,
    is_structured,
    obs_rows,
    part_dtype,
)
from policygrad.core.user_network import build_network, class_spec
from policygrad.run.checkpoint import MANIFEST_FILE, checkpoint_to_load, load_model_state, read_manifest
from policygrad.run.records import config_from_record


def observation_batch(obs: Any, space: gym.Space, what: str = "obs") -> tuple[np.ndarray, bool]:
    """``obs`` as a NumPy batch ``(B, *space.shape)`` and whether it was one observation; a ValueError
    naming the shape expected when it is neither one observation of ``space`` nor a batch of them, or
    not numbers (a string, None, a ragged list)."""
    shape = space.shape
    if shape is None:  # every supported observation space has one; a custom space may not
        raise UserInputError(f"{what}: the observation space {space} has no shape")
    expected = f"one observation of shape {shape} or a batch of shape (B, {', '.join(map(str, shape))}"
    expected += ",)" if len(shape) == 0 else ")"
    try:
        array = np.asarray(obs)
    except ValueError as exc:  # ragged nested lists
        raise UserInputError(f"{what}: not an array of numbers ({exc}); expected {expected}") from None
    if array.dtype.kind not in "biuf":
        raise UserTypeError(f"{what}={obs!r:.80} is invalid: expected numbers ({expected}), not an array of "
                            f"dtype {array.dtype}")
    if array.shape == tuple(shape):
        single = True
    elif array.ndim == len(shape) + 1 and array.shape[1:] == tuple(shape):
        single = False
    else:
        raise UserInputError(f"{what} has shape {array.shape}: expected {expected} for the observation space "
                             f"{space}")
    if isinstance(space, gym.spaces.Discrete):
        if array.dtype.kind not in "iu" or array.size and not (
                (array >= space.start).all() and (array < space.start + space.n).all()):
            raise UserInputError(f"{what}={obs!r:.80} is invalid: expected integers in [{space.start}, "
                                 f"{space.start + space.n}) for the observation space {space}")
    return (array[None] if single else array), single


class Agent:
    """A network plus the config that made it. ``act`` takes one observation or a batch."""

    def __init__(self, network: PolicyNetwork, config: Config, device: torch.device | str = "cpu") -> None:
        self.network = network.to(device)
        self.config = config
        self.device = torch.device(device)

    @property
    def env_id(self) -> str:
        return self.config.env_id

    @property
    def recurrent(self) -> bool:
        """Whether the policy carries a state between steps (``recurrent`` lstm | gru): then :meth:`act`
        takes and returns it."""
        return self.network.is_recurrent

    def initial_state(self, batch: int = 1) -> np.ndarray:
        """A recurrent agent's state before an episode's first step, for ``batch`` observations at once:
        zeros ``(batch, state_size)``. Pass it (or ``state=None``) to :meth:`act` at every episode start."""
        if not isinstance(self.network, RecurrentActorCritic):
            raise UserInputError("initial_state: this agent's network is feed-forward (recurrent='none'): it has no "
                                 "state; call act(obs)")
        batch = check_int("batch", batch)
        if batch <= 0:
            raise UserInputError(f"batch={batch} is invalid: expected an integer > 0")
        return np.zeros((batch, self.network.state_size), dtype=np.float32)

    def act(self, obs: Any, state: Any = None, deterministic: bool = True, action_mask: Any = None) -> Any:
        """Environment actions for ``obs``, one observation or a batch ``(B, *obs_shape)`` of the
        observation space (checked: a ValueError names the shape expected).

        Returns a NumPy array: for one observation, the action's shape (``()``, a 0-d array, for a
        Discrete action space: ``int(agent.act(obs))`` or pass it to ``env.step`` as it is;
        ``action_space.shape`` for Box and MultiDiscrete); for a batch, ``(B, *that shape)``.
        ``deterministic`` (a bool) takes the distribution's mode, else samples (from torch's random
        state). A Dict/Tuple observation is given as the environment gives it (a dict or tuple of parts,
        each one observation or a batch). ``action_mask``: the allowed actions, ``(n,)`` or ``(B, n)``
        (flags side by side for MultiDiscrete; a Dict observation's ``"action_mask"`` key serves
        too unless the run had ``action_masking=off``); the action is then always an allowed one.

        A recurrent agent (:attr:`recurrent`) returns ``(actions, next_state)``: ``state`` is the state
        after the previous step of the same episode(s), ``(B, state_size)`` (``(1, state_size)`` for
        one observation), or None (:meth:`initial_state`) at an episode's first step."""
        deterministic = check_bool("deterministic", deterministic)
        obs_t, single, mask = self._observation(obs)
        if action_mask is not None:
            mask = np.asarray(action_mask)
        if mask is not None and self.config.action_masking == "auto":
            width = mask_width(self.network.action_space)
            if width is None or mask.dtype.kind not in "bui" or mask.shape[-1:] != (width,) or mask.ndim > 2:
                raise UserInputError(f"action_mask of shape {mask.shape} and dtype {mask.dtype} does not fit the "
                                     f"action space {self.network.action_space}: expected bools or 0/1 of shape "
                                     f"({width},) or (B, {width})")
            mask_t = torch.as_tensor(mask.reshape(-1, width).astype(bool), device=self.device)
            obs_t = {**obs_t, MASK_KEY: mask_t} if isinstance(obs_t, dict) else {OBS_KEY: obs_t, MASK_KEY: mask_t}
        network = self.network
        if not isinstance(network, RecurrentActorCritic):
            if state is not None:
                raise UserInputError("state: this agent's network is feed-forward (recurrent='none'): it has no "
                                     "state; call act(obs)")
            with torch.no_grad():
                actions = np.asarray(network.to_env(network.act(obs_t, deterministic)))
            return actions[0, ...] if single else actions
        rows = obs_rows(obs_t)
        if state is None:
            state = self.initial_state(rows)
        state_np = np.asarray(state, dtype=np.float32)
        if state_np.shape != (rows, network.state_size):
            raise UserInputError(f"state has shape {state_np.shape}: expected ({rows}, {network.state_size}) for "
                                 f"{rows} observation(s) (agent.initial_state({rows}) at an episode's start)")
        with torch.no_grad():
            starts = torch.zeros(rows, dtype=torch.bool, device=self.device)
            dist, _, next_state = network.step(obs_t, torch.as_tensor(state_np, device=self.device), starts,
                                               with_value=False)
            actions = np.asarray(network.to_env(dist.mode() if deterministic else dist.sample()))
        return (actions[0, ...] if single else actions), next_state.cpu().numpy()

    def _observation(self, obs: Any) -> tuple[Any, bool, np.ndarray | None]:
        """``obs`` as the network's input (a tensor, or a dict of parts for Dict/Tuple spaces), whether
        it was one observation, and the mask a Dict observation carried under ``"action_mask"``."""
        space = self.network.observation_space
        if not is_structured(space):
            batch, single = observation_batch(obs, space)
            return torch.as_tensor(batch, dtype=torch.float32, device=self.device), single, None
        if not isinstance(obs, (dict, tuple, list)):
            raise UserInputError(f"obs is a {type(obs).__name__}: the observation space {space} takes a "
                                 f"{'dict' if isinstance(space, gym.spaces.Dict) else 'tuple'} of parts")
        try:
            flat = flatten_obs(obs, space)
        except (KeyError, IndexError, TypeError) as exc:
            raise UserInputError(f"obs does not have the parts of the observation space {space} ({exc!r})") from None
        mask = flat.pop(MASK_KEY, None)
        parts, singles = {}, set()
        for path, sub in feature_parts(space).items():
            batch, single = observation_batch(flat[path], sub, f"obs[{path!r}]")
            parts[path] = torch.as_tensor(batch, dtype=part_dtype(sub), device=self.device)
            singles.add(single)
        if len(singles) != 1:
            raise UserInputError("obs mixes single parts and batches of parts: give one observation or a batch")
        return parts, singles.pop(), None if mask is None else np.asarray(mask)


def _check_device(device: Any) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        reject_type("device", device, "str (" + " | ".join(DEVICES) + ") or torch.device")
    return resolve_device(device)


def load(run_dir: str | Path, device: str | torch.device = "cpu", trust_env: bool = False,
         network: nn.Module | None = None) -> Agent:
    """The agent saved in ``run_dir`` (or a checkpoint folder itself). Reads JSON and safetensors only,
    checks every file against the manifest's checksums and every config value's type, and never runs
    code from the files: an ``env_id`` naming a Python module (``module:Class``) is refused unless
    ``trust_env`` (or the module is already imported and names an environment class). A run directory
    without a final ``checkpoint/`` (a killed run) is a UserInputError naming its newest periodic
    checkpoint, which you may load by passing that folder.

    ``device``: cpu | cuda | mps | auto (CUDA, then MPS, then CPU) or a ``torch.device``.

    A run with your own network (the config's ``network``, ``module:Class``) is rebuilt as
    ``Class(observation_space, action_space)``, which imports that module: refused likewise unless
    ``trust_env`` or the module is already imported; or pass ``network``, a module of yours to load the
    weights into (nothing named by the files is imported then)."""
    if not isinstance(run_dir, (str, Path)):
        reject_type("run_dir", run_dir, "str or pathlib.Path (a run directory or a checkpoint folder)")
    trust_env = check_bool("trust_env", trust_env)
    torch_device = _check_device(device)
    if network is not None and (not isinstance(network, nn.Module) or isinstance(network, PolicyNetwork)):
        reject_type("network", network, "your own torch.nn.Module (an instance)")
    folder = checkpoint_to_load(run_dir)
    manifest = read_manifest(folder)
    values = dict(manifest["config"])
    values["device"] = torch_device.type if torch_device.type in DEVICES else "cpu"
    config = config_from_record(values, trust_env, source=str(folder / MANIFEST_FILE),
                                trust_network=trust_env or network is not None)
    recorded = config.network or "the built-in network"
    if network is not None:  # errors from here on name the class passed, the one that is used
        config = config.replace(network=class_spec(type(network)))
    with env_kwargs_for(config.env_id, config.env_kwargs):
        obs_space, act_space = env_spaces(config.env_id)
    net = build_network(config, obs_space, act_space, with_value=algorithm(config.algo).needs_value(config),
                        module=network)
    try:
        load_model_state(folder, net, torch_device)
    except UserInputError as exc:
        if network is None:
            raise
        raise UserInputError(f"network={config.network!r} (the module passed) does not fit the weights of {folder}, "
                             f"trained with {recorded}: {exc}") from None
    net.eval()
    return Agent(net, config, torch_device)
