"""The RL Baselines3 Zoo's Atari PPO and A2C as the Atari benchmarks drive them: a learner object stepped one
iteration at a time, its environments core/atari.py's training stack in this process.

``atari_speed.py``, ``atari_vs_sb3.py`` and ``atari_fp32_ceiling.py`` time the same learner; it lives here so
that their numbers are of one configuration (run/presets/ppo.yaml, a2c.yaml: the zoo's Atari entries).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode

from policygrad.algos.a2c import A2C, A2CConfig
from policygrad.algos.ppo import PPO, PPOConfig
from policygrad.core.atari import make_atari_env
from policygrad.core.envs import VecEnv
from policygrad.core.networks import build_agent


def zoo_atari_learner(algo: str, env_id: str, steps: int, threads: int, precision: str = "fp32") -> Any:
    """A fresh PPO (8 envs x 128 steps, 4 epochs of 4 minibatches of 256, lr 2.5e-4 and clip 0.1 annealed,
    entropy 0.01) or A2C (16 envs x 5 steps, RMSprop 7e-4, entropy 0.01, value 0.25) learner on ``env_id``, one
    Nature CNN shared by policy and value computing in ``precision``; ``learner.loop.envs.close()`` when done.
    The environment id in the config is a placeholder: the learner is handed its environments directly."""
    cfg: Any = (PPOConfig(env_id="CartPole-v1", num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4,
                          learning_rate=2.5e-4, clip_coef=0.1, anneal_clip=True, ent_coef=0.01, vf_coef=0.5,
                          gamma=0.99, gae_lambda=0.95, shared_trunk=True, total_steps=steps,
                          torch_threads=threads, precision=precision) if algo == "ppo" else
                A2CConfig(env_id="CartPole-v1", num_envs=16, num_steps=5, learning_rate=7e-4, optimizer="rmsprop",
                          anneal_lr=False, advantage_estimator="nstep", ent_coef=0.01, vf_coef=0.25, gamma=0.99,
                          shared_trunk=True, total_steps=steps, torch_threads=threads, precision=precision))
    vector = gym.vector.SyncVectorEnv([lambda: make_atari_env(env_id, training=True) for _ in range(cfg.num_envs)],
                                      autoreset_mode=AutoresetMode.NEXT_STEP)
    envs = VecEnv(vector)
    torch.manual_seed(cfg.seed)
    network = build_agent(cfg, envs.single_observation_space, envs.single_action_space, with_value=True)
    return (PPO if algo == "ppo" else A2C)(cfg, envs, network)
