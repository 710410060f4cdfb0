"""Micro-benchmark of one acting step of the fixed-horizon collector, torch against NumPy.

One step: the fused policy-and-value MLP on N observations, a sample, its log-prob, and the action,
log-prob and value written into (T, N) NumPy buffers, then the actions as the environment takes
them, as ``FixedHorizonCollector`` does. **torch**: ``acting_forward`` + ``sample_with_log_prob``
+ three row writes + ``to_env``; **NumPy**: :mod:`policygrad.fast.numpy_acting`'s actor. ``--head
categorical``: CartPole-v1's shapes (4 inputs, 2 actions); ``gaussian``: Pendulum-v1's (3 inputs, one
action in [-2, 2]). The default 64x64 tanh actor-critic, one torch thread. Timed with the process's CPU time (less
disturbed by other work on a shared machine than wall time), alternating the two paths; per-step
medians over the repetitions.

    .venv/bin/python benchmarks/acting_step.py [--head categorical] [--sizes 8 64] [--reps 15] [--steps 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

from policygrad.core.networks import ActorCritic
from policygrad.fast.fused_acting import acting_forward
from policygrad.fast.numpy_acting import numpy_actor_class, sampling_generator

SPACES = {"categorical": (gym.spaces.Box(-5.0, 5.0, (4,)), gym.spaces.Discrete(2)),
          "gaussian": (gym.spaces.Box(-8.0, 8.0, (3,)), gym.spaces.Box(-2.0, 2.0, (1,)))}


def buffers(net: ActorCritic, rows: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    obs_space, action_space = net.observation_space, net.action_space
    obs = np.random.default_rng(0).standard_normal((steps, rows, *obs_space.shape), dtype=np.float32)
    discrete = isinstance(action_space, gym.spaces.Discrete)
    act = np.zeros((steps, rows, *(() if discrete else action_space.shape)), np.int64 if discrete else np.float32)
    return obs, act, np.zeros((steps, rows), np.float32), np.zeros((steps, rows), np.float32)


def torch_step(net: ActorCritic, rows: int, steps: int):
    forward = acting_forward(net, expected_rows=steps * rows)
    obs, act, logp, value = buffers(net, rows, steps)
    obs = torch.from_numpy(obs)

    def run() -> None:
        with torch.no_grad():
            for t in range(steps):
                dist, v = forward(obs[t])
                actions, log_probs = dist.sample_with_log_prob()
                act[t], logp[t], value[t] = actions.numpy(), log_probs.numpy(), v.numpy()
                net.to_env(actions)
    return run


def numpy_step(net: ActorCritic, rows: int, steps: int):
    actor = numpy_actor_class(net, rows)(net, rows, sampling_generator(0))
    obs, act, logp, value = buffers(net, rows, steps)

    def run() -> None:
        for t in range(steps):
            actor.act(obs[t], act[t], logp[t], value[t])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", choices=list(SPACES), default="categorical")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = ActorCritic(*SPACES[args.head])
    print("| N envs | torch: us per step | NumPy: us per step | torch / NumPy |")
    print("|---|---|---|---|")
    for rows in args.sizes:
        paths = {"torch": torch_step(net, rows, args.steps), "numpy": numpy_step(net, rows, args.steps)}
        times: dict[str, list[float]] = {k: [] for k in paths}
        for rep in range(args.reps):
            for name in (list(paths) if rep % 2 == 0 else list(paths)[::-1]):
                start = time.process_time()
                paths[name]()
                times[name].append((time.process_time() - start) / args.steps * 1e6)
        t, n = statistics.median(times["torch"]), statistics.median(times["numpy"])
        print(f"| {rows} | {t:.1f} | {n:.1f} | {t / n:.2f}x |")


if __name__ == "__main__":
    main()
