"""Writes tests/data/prechange/: small runs made by policygrad before the package was laid out by
layer (commit b9f1e03), with the actions each agent takes on fixed observations. test_compat.py
loads them with the current code, acts, and resumes one. Run once; the output is committed.

    .venv/bin/python tests/data/make_prechange_runs.py
"""

import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np

import policygrad as pg

OUT = Path(__file__).resolve().parent / "prechange"
RUNS = {
    # PPO on CartPole with observation normalization: buffers and a periodic, resumable checkpoint
    "ppo_cartpole": ("ppo", dict(env_id="CartPole-v1", total_steps=2048, num_envs=4, num_steps=64,
                                 hidden_sizes=(16, 16), normalize_obs=True, checkpoint_every=1024)),
    # A2C on Pendulum, Gaussian head, PopArt and reward scaling: every statistic a checkpoint holds
    "a2c_pendulum": ("a2c", dict(env_id="Pendulum-v1", total_steps=1000, num_envs=2, hidden_sizes=(16,),
                                 reward_norm="popart", normalize_obs=True, checkpoint_every=500)),
    # REINFORCE without a critic: a policy-only network
    "reinforce_cartpole": ("reinforce", dict(env_id="CartPole-v1", total_steps=1500, num_envs=2,
                                             episodes_per_update=2, baseline="none", hidden_sizes=(8,),
                                             checkpoint_every=0)),
}

if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    expected = {}
    for name, (algo, values) in RUNS.items():
        config = pg.make_config(algo, preset="none", seed=3, tensorboard=False, progress=False,
                                eval_episodes=2, run_dir=str(OUT / name), **values)
        result = pg.train(config)
        for extra in ("learning_curve.png",):
            (result.run_dir / extra).unlink(missing_ok=True)
        agent = pg.load(result.run_dir)
        space = gym.make(values["env_id"]).observation_space
        space.seed(0)
        obs = np.stack([space.sample() for _ in range(6)]).clip(-3, 3)
        expected[name] = {"observations": obs.tolist(), "actions": np.asarray(agent.act(obs)).tolist()}
    (OUT / "expected_actions.json").write_text(json.dumps(expected, indent=1))
    print("wrote", OUT)
