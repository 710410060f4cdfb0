"""A trained policy you can act with, and loading one from a run directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from policygrad.algos import algorithm
from policygrad.core.config import Config
from policygrad.core.envs import env_spaces
from policygrad.core.networks import ActorCritic, build_agent
from policygrad.run.checkpoint import CHECKPOINT_DIR, MANIFEST_FILE, load_model_state, read_manifest
from policygrad.run.records import config_from_record


class Agent:
    """A network plus the config that made it. ``act`` takes one observation or a batch."""

    def __init__(self, network: ActorCritic, config: Config, device: torch.device | str = "cpu") -> None:
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
        assert space.shape is not None  # every supported observation space has a shape
        single = obs_t.dim() == len(space.shape)
        if single:
            obs_t = obs_t.unsqueeze(0)
        actions = self.network.to_env(self.network.act(obs_t, deterministic))
        return actions[0] if single else actions


def load(run_dir: str | Path, device: str = "cpu", trust_env: bool = False) -> Agent:
    """The agent saved in ``run_dir`` (or a checkpoint folder itself). Reads JSON and safetensors only,
    checks every file against the manifest's checksums and every config value's type, and never runs
    code from the files: an ``env_id`` naming a Python module (``module:Class``) is refused unless
    ``trust_env`` (or the module is already imported and names an environment class)."""
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINT_DIR if (run_dir / CHECKPOINT_DIR).is_dir() else run_dir
    manifest = read_manifest(folder)
    values = dict(manifest["config"])
    values["device"] = device
    config = config_from_record(values, trust_env, source=str(folder / MANIFEST_FILE))
    obs_space, act_space = env_spaces(config.env_id)
    network = build_agent(config, obs_space, act_space, with_value=algorithm(config.algo).needs_value(config))
    load_model_state(folder, network, device)
    network.eval()
    return Agent(network, config, device)
