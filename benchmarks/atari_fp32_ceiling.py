"""How far PPO's (or A2C's) fp32 Atari loop is from what this CPU core can do at all (issue 29's 1.5x-SB3 target).

    python benchmarks/atari_fp32_ceiling.py [--algo ppo|a2c] [--env PongNoFrameskip-v4] [--iterations 3]
        [--out benchmarks/results/atari_fp32_ceiling.md]

On one thread, all timed in this process's CPU time (other jobs on the machine disturb it far less than the
wall clock), in one invocation:

1. the core's practical peak: the best of 5 float32 products of two 2048 x 2048 matrices;
2. the zoo's Atari PPO or A2C learner (benchmarks/zoo_atari.py), fp32: the CPU time of collection and of the
   update over ``--iterations`` iterations after a warm-up one, and of the games' stepping alone;
3. the network arithmetic of an iteration, counted from the Nature CNN's layers: forward and backward of
   each epoch on the rollout's frames (PPO: 4 on 1,024, A2C: 1 on 80), the first convolution's input
   gradient skipped as autograd skips it, and one forward per frame when acting; and what it would cost at
   the peak;
4. the torch profiler's split of about 1,024 steps' operator time: convolutions, matrix products, the rest;
5. SB3 2.9.2's PPO or A2C with the same settings and games over as many steps (atari_vs_sb3.py's runner).

The ceiling is the loop's rate if every network operation ran at the peak and nothing but the games
cost anything else. Needs the atari and compare extras.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch
from atari_vs_sb3 import sb3
from torch import nn
from torch.profiler import ProfilerActivity, profile
from zoo_atari import zoo_atari_learner

HERE = Path(__file__).resolve().parent
CONVOLUTION = ("aten::mkldnn_convolution", "aten::convolution_backward")
PRODUCTS = ("aten::mm", "aten::addmm")


def peak_gflops(size: int = 2048) -> float:
    """The best of 5 float32 ``size`` x ``size`` matrix products, in GFLOP per CPU second."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        a @ b
        best = min(best, time.process_time() - start)
    return 2 * size**3 / best / 1e9


def flops_per_frame(encoder: nn.Module, frame: torch.Tensor) -> tuple[float, float]:
    """(forward, forward + backward) FLOP of one frame through ``encoder``'s convolutions and linear layers:
    a multiply-add is 2 FLOP; backward is twice forward (input and weight gradients) except for the first
    layer, whose input (the frames) needs no gradient."""
    macs: list[int] = []

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs.append(output[0].numel() * kernel)
        elif isinstance(module, nn.Linear):
            macs.append(module.in_features * module.out_features)

    hooks = [m.register_forward_hook(count) for m in encoder.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        encoder(frame)
    for hook in hooks:
        hook.remove()
    forward = 2.0 * sum(macs)
    return forward, forward + 2.0 * (2 * sum(macs) - macs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", choices=("ppo", "a2c"), default="ppo")
    parser.add_argument("--env", default="PongNoFrameskip-v4")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "atari_fp32_ceiling.md",
                        help="appends its section to this Markdown file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    peak = peak_gflops()

    learner = zoo_atari_learner(args.algo, args.env, 1024 * (args.iterations + 1), threads=1)
    cfg, collector = learner.cfg, learner.loop.collector
    steps_per_iteration = cfg.num_envs * cfg.num_steps
    epochs = getattr(cfg, "update_epochs", 1)  # A2C: one gradient step on the whole rollout
    clock = defaultdict(float)
    collect, update = collector.collect, learner.update
    step_arrays = learner.loop.envs.step_arrays

    def timed(name, fn):
        def run(*a, **k):
            start = time.process_time()
            out = fn(*a, **k)
            clock[name] += time.process_time() - start
            return out
        return run

    collector.collect, learner.update = timed("collect", collect), timed("update", update)
    learner.loop.envs.step_arrays = timed("games", step_arrays)
    learner.iterate()  # warm-up: first allocations, oneDNN kernels
    clock.clear()
    for _ in range(args.iterations):
        learner.iterate()
    per_iteration = {name: total / args.iterations for name, total in clock.items()}
    loop = per_iteration["collect"] + per_iteration["update"]

    space = learner.network.observation_space
    forward, train = flops_per_frame(learner.network.policy_body, torch.zeros((1, *space.shape), dtype=torch.uint8))
    network_flop = epochs * steps_per_iteration * train + steps_per_iteration * forward
    ceiling_seconds = network_flop / (peak * 1e9) + per_iteration["games"]

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(max(1, 1024 // steps_per_iteration)):  # about 1,024 steps: one PPO iteration, 12 of A2C
            learner.iterate()
    ops = {event.key: event.self_cpu_time_total for event in prof.key_averages()}
    total = sum(ops.values())
    share = {"convolutions": sum(ops.get(k, 0) for k in CONVOLUTION) / total,
             "matrix products": sum(ops.get(k, 0) for k in PRODUCTS) / total}
    share["other operators (elementwise: ReLU, frame conversion, optimizer)"] = 1 - sum(share.values())
    learner.loop.envs.close()
    sb3_rate = sb3(args.algo, args.env, steps_per_iteration * args.iterations)[1]
    target = 1.5 * sb3_rate

    rate = steps_per_iteration / loop
    lines = [
        f"# {args.algo.upper()}'s fp32 Atari loop against this core's ceiling ({args.env}, one thread)",
        "",
        f"`python benchmarks/atari_fp32_ceiling.py --algo {args.algo} --env {args.env} "
        f"--iterations {args.iterations}`, "
        f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}; CPU time of this process (the machine may be "
        "shared: see the commit that wrote this file).",
        "",
        "| | value |",
        "|---|---:|",
        f"| float32 2048 x 2048 matrix product, best of 5 | {peak:.0f} GFLOP/s |",
        f"| network arithmetic of one iteration ({steps_per_iteration:,} steps) | {network_flop / 1e9:.1f} GFLOP "
        f"({train / 1e6:.1f} MFLOP a frame trained, {forward / 1e6:.1f} acted) |",
        f"| the same at the peak | {network_flop / (peak * 1e9):.3f} s |",
        f"| stepping the {cfg.num_envs} games, an iteration | {per_iteration['games']:.3f} s |",
        f"| collection (acting + games), an iteration | {per_iteration['collect']:.3f} s |",
        f"| update ({epochs} epoch(s) x {getattr(cfg, 'num_minibatches', 1)} minibatch(es)), an iteration | "
        f"{per_iteration['update']:.3f} s |",
        f"| SB3, the same settings, games and steps | {sb3_rate:.0f} steps per CPU s |",
        f"| **policygrad, fp32** | **{rate:.0f} steps per CPU s** ({rate / sb3_rate:.2f}x SB3's) |",
        f"| **ceiling: network at the peak + the games** | **{steps_per_iteration / ceiling_seconds:.0f} steps per "
        f"CPU s** ({steps_per_iteration / ceiling_seconds / sb3_rate:.2f}x SB3's) |",
        f"| policygrad's rate as a share of the ceiling | {ceiling_seconds / loop:.0%} |",
        f"| issue 29's target, 1.5x SB3 | {target:.0f} steps per CPU s: "
        f"{max(0.0, loop - steps_per_iteration / target):.3f} s of the iteration's {loop:.3f} s to go |",
        "",
        "About 1,024 steps under the torch profiler: each kind's share of the self CPU time of torch's operators "
        "(the games and Python run outside them):",
        "",
        "| operators | share |",
        "|---|---:|",
        *[f"| {name} | {value:.0%} |" for name, value in share.items()],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    with args.out.open("a") as out:  # one section per invocation
        out.write(("\n" if args.out.exists() and args.out.stat().st_size else "") + text)


if __name__ == "__main__":
    main()
