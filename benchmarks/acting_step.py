"""Micro-benchmark of one acting step of the fixed-horizon collector, torch against NumPy.

One step: the fused policy-and-value MLP on N observations, a Categorical sample, its log-prob, and
the action, log-prob and value written into (T, N) NumPy buffers, as ``FixedHorizonCollector``
does. **torch**: ``acting_forward`` + ``sample_with_log_prob`` + three row writes; **NumPy**:
:class:`policygrad.numpy_acting.NumpyCategoricalActor`. CartPole-v1's shapes (4 inputs, 2 actions),
the default 64x64 tanh actor-critic, one torch thread. Timed with the process's CPU time (less
disturbed by other work on a shared machine than wall time), alternating the two paths; per-step
medians over the repetitions.

    .venv/bin/python benchmarks/acting_step.py [--sizes 8 64 256] [--reps 15] [--steps 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

from policygrad.networks import ActorCritic
from policygrad.numpy_acting import NumpyCategoricalActor, sampling_generator


def torch_step(net: ActorCritic, rows: int, steps: int):
    forward = net.acting_forward(expected_rows=steps * rows)
    obs = torch.randn(steps, rows, 4)
    act, logp, value = np.zeros((steps, rows), np.int64), np.zeros((steps, rows), np.float32), \
        np.zeros((steps, rows), np.float32)

    def run() -> None:
        with torch.no_grad():
            for t in range(steps):
                dist, v = forward(obs[t])
                actions, log_probs = dist.sample_with_log_prob()
                act[t], logp[t], value[t] = actions.numpy(), log_probs.numpy(), v.numpy()
    return run


def numpy_step(net: ActorCritic, rows: int, steps: int):
    actor = NumpyCategoricalActor(net, rows, sampling_generator(0))
    obs = np.random.default_rng(0).standard_normal((steps, rows, 4), dtype=np.float32)
    act, logp, value = np.zeros((steps, rows), np.int64), np.zeros((steps, rows), np.float32), \
        np.zeros((steps, rows), np.float32)

    def run() -> None:
        for t in range(steps):
            actor.act(obs[t], act[t], logp[t], value[t])
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = ActorCritic(gym.spaces.Box(-5.0, 5.0, (4,)), gym.spaces.Discrete(2))
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
