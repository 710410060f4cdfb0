"""A trained policy you can act with, and loading one from a run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from policygrad.algos import algorithm
from policygrad.core.config import Config
from policygrad.core.envs import env_spaces
from policygrad.core.errors import UserInputError
from policygrad.core.networks import PolicyNetwork
from policygrad.core.user_network import build_network
from policygrad.run.checkpoint import MANIFEST_FILE, checkpoint_to_load, load_model_state, read_manifest
from policygrad.run.records import config_from_record


class Agent:
    """A network plus the config that made it. ``act`` takes one observation or a batch."""

    def __init__(self, network: PolicyNetwork, config: Config, device: torch.device | str = "cpu") -> None:
        self.network = network.to(device)
        self.config = config
        self.device = torch.device(device)

    @property
    def env_id(self) -> str:
        return self.config.env_id

    def act(self, obs, deterministic: bool = True) -> np.ndarray:
        """Environment actions for ``obs`` (one observation, or a batch ``(B, *obs_shape)``)."""
        space = self.network.observation_space
        obs_t = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=self.device)
        if space.shape is None:  # every supported observation space has one; a custom space may not
            raise UserInputError(f"act() needs an observation space with a shape, not {space}")
        single = obs_t.dim() == len(space.shape)
        if single:
            obs_t = obs_t.unsqueeze(0)
        actions = self.network.to_env(self.network.act(obs_t, deterministic))
        return actions[0] if single else actions


def load(run_dir: str | Path, device: str = "cpu", trust_env: bool = False, network: nn.Module | None = None) -> Agent:
    """The agent saved in ``run_dir`` (or a checkpoint folder itself). Reads JSON and safetensors only,
    checks every file against the manifest's checksums and every config value's type, and never runs
    code from the files: an ``env_id`` naming a Python module (``module:Class``) is refused unless
    ``trust_env`` (or the module is already imported and names an environment class). A run directory
    without a final ``checkpoint/`` (a killed run) is a UserInputError naming its newest periodic
    checkpoint, which you may load by passing that folder.

    A run with your own network (the config's ``network``, ``module:Class``) is rebuilt as
    ``Class(observation_space, action_space)``, which imports that module: refused likewise unless
    ``trust_env`` or the module is already imported; or pass ``network``, a module of yours to load the
    weights into (nothing named by the files is imported then)."""
    folder = checkpoint_to_load(run_dir)
    manifest = read_manifest(folder)
    values = dict(manifest["config"])
    values["device"] = device
    config = config_from_record(values, trust_env, source=str(folder / MANIFEST_FILE),
                                trust_network=trust_env or network is not None)
    obs_space, act_space = env_spaces(config.env_id)
    net = build_network(config, obs_space, act_space, with_value=algorithm(config.algo).needs_value(config),
                        module=network)
    load_model_state(folder, net, device)
    net.eval()
    return Agent(net, config, device)
