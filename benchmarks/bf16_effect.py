"""What ``precision=bf16`` (bfloat16 autocast around the CNN encoder, core/precision.py) does to learning,
measured cheaply (issue 29).

``gradients``: PPO's loss gradient on real Pong frames, bf16 against fp32. The network is a checkpoint of a
PPO run on ALE/Pong-v5 (copy it elsewhere first: this script only reads it) or a fresh one; one rollout is
collected with the preset (8 envs x 128 steps, fp32 acting) after one warm-up rollout, cut into the preset's
4 shuffled minibatches of 256, and on each minibatch the gradient of the PPO loss is computed with the
encoder in fp32 and in bf16 from the same parameters. Reported per parameter tensor: the cosine between the
two gradients and the relative error |g_bf16 - g_fp32| / |g_fp32|, next to the same two numbers between the
fp32 gradients of two different minibatches (sampling noise, the yardstick); and the probability ratio
pi/pi_old at the first minibatch before any step, which is exactly 1 in fp32 when acting and update compute
alike: with bf16 it moves by bf16's rounding, with pi_old from fp32 acting or from bf16 acting.

``speed``: the Pong network alone, acting and a minibatch's forward + backward, fp32 against bf16.

``learning``: PPO (or A2C) with the same settings and seeds, fp32 against bf16, on Catch from pixels
(tests/image_envs.py: the Nature CNN on 1x36x36 uint8 frames): deterministic evaluations along the way, the
final one, their mean (AUC), and each run's CPU time.

    PYTHONPATH=src python benchmarks/bf16_effect.py speed [--rounds 3]
    PYTHONPATH=src python benchmarks/bf16_effect.py gradients --checkpoint /tmp/pong_ckpt [--out FILE.md]
    PYTHONPATH=src:tests python benchmarks/bf16_effect.py learning [--algo ppo|a2c] --seeds 10 [--out FILE.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import policygrad as pg
from policygrad.algos.on_policy import batch_rows, estimate_advantages
from policygrad.algos.ppo import PPO, minibatch_bounds, ppo_minibatch_loss
from policygrad.core.envs import make_vec_env
from policygrad.core.networks import ActorCritic, build_agent
from policygrad.reporting import statistics as stats
from policygrad.run.checkpoint import load_model_state


def gradient(cfg, network: ActorCritic, mb, dtype: torch.dtype | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The PPO loss's gradient on ``mb`` per parameter, and the new log-probabilities, with the encoder
    computing in ``dtype`` (None: fp32)."""
    network.autocast_dtype = dtype
    network.zero_grad(set_to_none=True)
    loss, terms = ppo_minibatch_loss(cfg, network, mb, clip_coef=cfg.clip_coef)
    loss.backward()
    return {name: p.grad.detach().clone() for name, p in network.named_parameters()}, terms["log_probs"]


def compare(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Per parameter tensor and for all of them ("all"): cosine of ``a`` and ``b``, |a - b| / |b|."""
    out = {}
    for name in [*a, "all"]:
        x = torch.cat([g.flatten() for g in a.values()]) if name == "all" else a[name].flatten()
        y = torch.cat([g.flatten() for g in b.values()]) if name == "all" else b[name].flatten()
        cos = torch.nn.functional.cosine_similarity(x.double(), y.double(), dim=0).item()
        out[name] = (cos, ((x - y).norm() / y.norm()).item())
    return out


@torch.no_grad()
def acting_log_probs(network: ActorCritic, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a|s) ``(T, N)`` computed as acting computes it: one step of N observations at a time."""
    return torch.stack([network.dist(obs[t]).log_prob(actions[t]) for t in range(obs.shape[0])])


def gradients(args: argparse.Namespace) -> list[str]:
    torch.set_num_threads(1)
    cfg = pg.make_config("ppo", env_id=args.env, progress=False, tensorboard=False)  # the preset
    envs = make_vec_env(cfg.env_id, cfg.num_envs, training=True)
    torch.manual_seed(cfg.seed)
    network = build_agent(cfg, envs.single_observation_space, envs.single_action_space, with_value=True)
    if args.checkpoint:
        load_model_state(args.checkpoint, network)
    learner = PPO(cfg, envs, network)
    learner.loop.collector.collect()  # warm-up: leave the games' first frames
    batch = learner.loop.collector.collect()
    estimate = estimate_advantages(batch, network, cfg)
    data = batch_rows(batch, estimate.advantages, estimate.targets, cfg)
    envs.close()
    torch.manual_seed(0)
    shuffled = data.rows(torch.randperm(len(data)))
    minibatches = [shuffled.rows(slice(a, b)) for a, b in minibatch_bounds(len(data), cfg.num_minibatches)]
    # pi_old as bf16 acting would have computed it (N observations a step), row for row with the batch
    network.autocast_dtype = torch.bfloat16
    bf16_old = batch.flat(acting_log_probs(network, batch.obs, batch.actions))[batch.flat(batch.valid)]

    rows, ratios = [], []
    fp32_grads = []
    torch.manual_seed(0)
    order = torch.randperm(len(data))
    for i, mb in enumerate(minibatches):
        g32, lp32 = gradient(cfg, network, mb, None)
        g16, lp16 = gradient(cfg, network, mb, torch.bfloat16)
        fp32_grads.append(g32)
        rows.append(compare(g16, g32))
        if i == 0:
            index = order[: len(mb)]
            ratios = [("fp32 update, fp32 acting", (lp32 - mb.log_probs).exp()),
                      ("bf16 update, fp32 acting", (lp16 - mb.log_probs).exp()),
                      ("bf16 update, bf16 acting", (lp16 - bf16_old[index]).exp())]
    noise = [compare(fp32_grads[i], fp32_grads[i + 1]) for i in range(len(fp32_grads) - 1)]
    network.autocast_dtype = None

    names = list(rows[0])
    source = f"checkpoint {Path(args.checkpoint).name}" if args.checkpoint else "a fresh network"
    lines = [f"### Gradient agreement, PPO on {args.env} ({source}; {len(data)} transitions, "
             f"{len(minibatches)} minibatches of {len(minibatches[0])})", "",
             "| parameter | bf16 vs fp32: cosine (min over minibatches) | relative error (max) | "
             "two fp32 minibatches: cosine (median) | relative difference (median) |", "|---|---|---|---|---|"]
    for name in names:
        cos = min(r[name][0] for r in rows)
        err = max(r[name][1] for r in rows)
        ncos = statistics.median(r[name][0] for r in noise)
        nerr = statistics.median(r[name][1] for r in noise)
        lines.append(f"| {name} | {cos:.5f} | {err:.4f} | {ncos:.3f} | {nerr:.2f} |")
    lines += ["", "| first minibatch, before any step | mean abs(ratio - 1) | max abs(ratio - 1) | "
              "rows outside the clip (1 +- 0.1) |", "|---|---|---|---|"]
    for label, ratio in ratios:
        dev = (ratio - 1).abs()
        lines.append(f"| {label} | {dev.mean().item():.2e} | {dev.max().item():.2e} | "
                     f"{int((dev > cfg.clip_coef).sum())} of {len(dev)} |")
    return lines


def speed(args: argparse.Namespace) -> list[str]:
    """CPU milliseconds of the Pong network (the Nature CNN shared by both heads, 4x84x84 uint8 frames):
    acting on 8 and 16 frames (PPO's and A2C's copies), and forward + backward on 256 frames (a PPO
    minibatch), fp32 against bf16, alternating."""
    import gymnasium as gym
    import numpy as np

    torch.set_num_threads(1)
    torch.manual_seed(0)
    network = ActorCritic(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6), shared_trunk=True)

    def act(frames: torch.Tensor) -> None:
        with torch.no_grad():
            network.dist_and_value(frames)

    def update(frames: torch.Tensor) -> None:
        dist, value = network.dist_and_value(frames)
        (dist.entropy().mean() + value.mean()).backward()

    rows = []
    for label, fn, batch, reps in (("acting, 8 frames", act, 8, 200), ("acting, 16 frames", act, 16, 100),
                                   ("forward + backward, 256 frames", update, 256, 10)):
        frames = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for _ in range(args.rounds):
            for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
                network.autocast_dtype = dtype
                fn(frames)  # warm-up
                start = time.process_time()
                for _ in range(reps):
                    fn(frames)
                times[precision].append((time.process_time() - start) / reps * 1000)
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        rows.append(f"| {label} | {fp32:.2f} | {bf16:.2f} | {fp32 / bf16:.2f}x |")
    return ["### The Pong network alone, CPU ms per call (medians of " + f"{args.rounds} rounds)", "",
            "| call | fp32 | bf16 | speed-up |", "|---|---|---|---|", *rows]


SETTINGS = {  # per algorithm, for Catch: the Nature CNN shared by both heads
    "ppo": dict(num_envs=8, num_steps=32, num_minibatches=4, update_epochs=4, learning_rate=1e-3),
    "a2c": dict(num_envs=16, num_steps=5, learning_rate=7e-4),
}


def learning(args: argparse.Namespace) -> list[str]:
    results: dict[str, list[tuple[float, list[float], float]]] = {"fp32": [], "bf16": []}
    steps: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            for precision in results:  # alternating, so that both see the same machine load
                cfg = pg.make_config(args.algo, env_id=args.env, encoder=args.encoder, precision=precision,
                                     seed=seed, shared_trunk=True, total_steps=args.steps,
                                     eval_every=args.steps // 8, eval_episodes=32, progress=False,
                                     tensorboard=False, **SETTINGS[args.algo])
                cpu = time.process_time()
                result = pg.train(cfg, run_dir=Path(tmp) / f"{precision}_{seed}")
                cpu = time.process_time() - cpu
                evals = (Path(result.run_dir) / "evals.csv").read_text().splitlines()
                header = evals[0].split(",")
                curve = [float(line.split(",")[header.index("eval_mean")]) for line in evals[1:]]
                steps = [int(line.split(",")[header.index("global_step")]) for line in evals[1:]]
                results[precision].append((curve[-1], curve, cpu))
                print(precision, seed, curve, f"{cpu:.1f} s", flush=True)
    lines = [f"### Learning, {args.algo.upper()} on {args.env} (encoder {args.encoder}), {args.steps} steps, "
             f"seeds 1-{args.seeds}", "",
             "Deterministic evaluations of 32 episodes every " + f"{args.steps // 8} steps; AUC: the mean of a run's "
             "evaluations (its learning speed).", "",
             "| precision | final evaluation per seed | final: mean | AUC: mean | evaluations at steps "
             + ", ".join(map(str, steps)) + " (mean over seeds) | CPU s per run (median) |",
             "|---|---|---|---|---|---|"]
    finals, aucs = {}, {}
    for precision, runs in results.items():
        finals[precision] = [r[0] for r in runs]
        aucs[precision] = [statistics.mean(r[1]) for r in runs]
        curve = [statistics.mean(r[1][i] for r in runs) for i in range(len(steps))]
        lines.append(f"| {precision} | {', '.join(f'{f:.2f}' for f in finals[precision])} | "
                     f"{statistics.mean(finals[precision]):.3f} | {statistics.mean(aucs[precision]):.3f} | "
                     f"{', '.join(f'{c:.2f}' for c in curve)} | {statistics.median(r[2] for r in runs):.1f} |")
    lines.append("")
    for label, scores in (("final evaluation", finals), ("AUC", aucs)):
        (c,) = stats.compare(scores, baseline="fp32")
        lines.append(f"- {label}: bf16 - fp32 = {c.difference:+.3f}, Welch p = {c.welch_p:.2f}, Mann-Whitney "
                     f"p = {c.mannwhitney_p:.2f}, Hedges' g = {c.hedges_g:+.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("speed")
    t.add_argument("--rounds", type=int, default=3)
    g = sub.add_parser("gradients")
    g.add_argument("--env", default="ALE/Pong-v5")
    g.add_argument("--checkpoint", default="", help="a checkpoint folder of a PPO run on --env (read only)")
    l = sub.add_parser("learning")  # noqa: E741
    l.add_argument("--env", default="image_envs:Catch")
    l.add_argument("--encoder", default="nature")
    l.add_argument("--seeds", type=int, default=5)
    l.add_argument("--steps", type=int, default=20480)
    l.add_argument("--algo", choices=sorted(SETTINGS), default="ppo")
    for p in (t, g, l):
        p.add_argument("--out", default=None, help="append the tables to this Markdown file")
    args = parser.parse_args()
    lines = {"speed": speed, "gradients": gradients, "learning": learning}[args.what](args)
    print("\n".join(lines))
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
