"""Recurrent PPO speed: policygrad against SB3-contrib's RecurrentPPO, same settings, same invocation.

    .venv/bin/python benchmarks/recurrent_speed.py [--steps 8192] [--repeats 2]
                                                   [--out benchmarks/results/recurrent_speed.md]

Both train on CartPoleNoVel-v1 with RL Baselines3 Zoo's ppo_lstm values: 8 copies x 32 steps, one
minibatch of the whole rollout, 20 epochs, an LSTM of 64 units for the actor and another for the critic
(SB3-contrib's default, enable_critic_lstm; policygrad's default, separate cores), each reading the
observation and followed by two 64-unit layers (SB3-contrib's default net_arch; policygrad's preset:
hidden_sizes empty, post_core_sizes 64 64), one torch thread. The two alternate, each
run in its own process (a fresh interpreter: no warm caches shared), and steps/s is environment steps
over the wall time of the training call (policygrad's includes its final 1-episode evaluation and plots:
the ratio is conservative). Needs the bench extra (sb3-contrib).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = "CartPoleNoVel-v1"

POLICYGRAD = f"""
import json, sys, time, torch
import policygrad as pg
steps, run_dir = int(sys.argv[1]), sys.argv[2]
cfg = pg.make_config("ppo", env_id="{ENV}", preset="{ENV}", total_steps=steps, seed=1, progress=False,
                     tensorboard=False, eval_episodes=1, checkpoint_every=0, normalize_obs=False, reward_norm="none")
start = time.perf_counter()
pg.train(cfg, run_dir=run_dir)
print(json.dumps({{"seconds": time.perf_counter() - start, "steps": cfg.total_steps}}))
"""

SB3 = f"""
import json, sys, time, torch
torch.set_num_threads(1)
import policygrad.core.envs  # registers {ENV}
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
steps = int(sys.argv[1])
env = make_vec_env("{ENV}", n_envs=8, seed=1)
model = RecurrentPPO("MlpLstmPolicy", env, n_steps=32, batch_size=256, n_epochs=20, learning_rate=1e-3,
                     gamma=0.98, gae_lambda=0.8, ent_coef=0.0, seed=1, device="cpu",
                     policy_kwargs=dict(lstm_hidden_size=64, enable_critic_lstm=True,
                                        net_arch=dict(pi=[64, 64], vf=[64, 64])))
start = time.perf_counter()
model.learn(total_timesteps=steps)
print(json.dumps({{"seconds": time.perf_counter() - start, "steps": model.num_timesteps}}))
"""


def run(script: str, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", script, str(steps), str(Path(tmp) / "run")], capture_output=True,
                             text=True, check=True, timeout=3600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["steps"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "recurrent_speed.md"))
    args = parser.parse_args()
    speeds: dict[str, list[float]] = {"policygrad": [], "sb3-contrib": []}
    for _ in range(args.repeats):  # alternating, so a load change on the machine hits both alike
        speeds["policygrad"].append(run(POLICYGRAD, args.steps))
        speeds["sb3-contrib"].append(run(SB3, args.steps))
        print({k: [round(v) for v in vs] for k, vs in speeds.items()}, flush=True)
    pg_sps, sb3_sps = (statistics.median(speeds[k]) for k in ("policygrad", "sb3-contrib"))
    lines = [
        "# Recurrent PPO speed: policygrad vs SB3-contrib RecurrentPPO",
        "",
        f"`benchmarks/recurrent_speed.py --steps {args.steps} --repeats {args.repeats}` ({time.strftime('%Y-%m-%d')}), "
        f"{ENV}, the zoo's ppo_lstm values (8 x 32 steps, 1 minibatch, 20 epochs, LSTM 64 on the observation for "
        "actor and critic, then 64x64 layers), "
        "one torch thread, CPU; each run a fresh process, the two alternating. On a shared 2-core machine: the "
        "ratio, measured side by side, is the number to read.",
        "",
        "| library | steps/s (each run) | median |",
        "|---|---|---|",
        *(f"| {k} | {', '.join(str(round(v)) for v in vs)} | {round(statistics.median(vs))} |"
          for k, vs in speeds.items()),
        "",
        f"policygrad / SB3-contrib: **{pg_sps / sb3_sps:.2f}x**",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
