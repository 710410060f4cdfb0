"""Recording evaluation episodes to MP4 files a person can play (Gymnasium's RecordVideo + moviepy)."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import torch

from policygrad.agent import Agent
from policygrad.core.envs import env_kwargs_for, make_env_fn
from policygrad.core.errors import UserInputError
from policygrad.core.masks import single_env_mask
from policygrad.core.runtime import seeded_sampling


def record_video(agent: Agent, out_dir: str | Path, episodes: int = 3, deterministic: bool = True,
                 seed: int = 10_000) -> list[Path]:
    """Play ``episodes`` episodes, one copy of the env rendering RGB frames, and write one MP4 per
    episode into ``out_dir``; returns the files written."""
    try:
        import moviepy  # noqa: F401  (RecordVideo needs it; say so before playing anything)
    except ImportError:
        raise UserInputError("recording video needs moviepy: pip install 'policygrad[video]'") from None
    out_dir = Path(out_dir)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # render off-screen: no display needed or probed
    try:
        with env_kwargs_for(agent.env_id, agent.config.env_kwargs):  # the run's environment arguments
            env = make_env_fn(agent.env_id, render_mode="rgb_array")()
    except TypeError:
        raise UserInputError(f"{agent.env_id} cannot render frames (no render_mode='rgb_array')") from None
    env = gym.wrappers.RecordVideo(env, str(out_dir), episode_trigger=lambda _: True, name_prefix="eval",
                                   disable_logger=True)
    try:
        with seeded_sampling(seed, agent.device):  # sampled actions too: same seed, same videos
            for episode in range(episodes):
                obs, info = env.reset(seed=seed + episode)
                done, state = False, None  # a recurrent agent's state starts each episode afresh
                while not done:
                    mask = single_env_mask(env, info) if agent.config.action_masking == "auto" else None
                    with torch.no_grad():
                        if agent.recurrent:
                            action, state = agent.act(obs, state, deterministic=deterministic, action_mask=mask)
                        else:
                            action = agent.act(obs, deterministic=deterministic, action_mask=mask)
                    obs, _, terminated, truncated, info = env.step(action)
                    done = terminated or truncated
    finally:
        env.close()
    return sorted(out_dir.glob("eval-episode-*.mp4"))
