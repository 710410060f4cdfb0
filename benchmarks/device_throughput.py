"""Training steps per second on the CPU and on CUDA, side by side on one machine.

    python benchmarks/device_throughput.py [--rounds 2] [--out benchmarks/results/device_throughput.md]

Each row trains the same config once per device per round, devices alternating, each in a fresh
process (so CUDA's start-up and the CPU's thread pool don't leak from one to the other). Steps per
second count the whole ``pg.train`` loop without its final evaluation and without the process start.
Answers the question a user with a GPU asks first: does ``--device cuda`` make this faster?"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (algo, fields). The first three are the CartPole settings of bench.py (SB3's tuned values and
# policygrad's preset); the last two grow the batch and the network until a GPU has work to do.
CASES = {
    "PPO CartPole, SB3's values (8x32, 64x64, 20 epochs)": (
        "ppo", dict(env_id="CartPole-v1", total_steps=20_480, preset="none", num_envs=8, num_steps=32,
                    num_minibatches=1, update_epochs=20, learning_rate=1e-3)),
    "PPO CartPole preset (8x128, 4 minibatches, 64x64)": ("ppo", dict(env_id="CartPole-v1", total_steps=20_480)),
    "A2C CartPole, SB3's values (8x5, RMSprop)": (
        "a2c", dict(env_id="CartPole-v1", total_steps=20_000, preset="none", num_envs=8, num_steps=5,
                    optimizer="rmsprop", learning_rate=7e-4)),
    "PPO Pendulum preset (4x1024, 64 minibatches x 10 epochs)": ("ppo", dict(env_id="Pendulum-v1", total_steps=20_480)),
    "PPO Pendulum, 64 envs x 128 steps, 256x256, 8 minibatches x 4 epochs": (
        "ppo", dict(env_id="Pendulum-v1", total_steps=32_768, preset="none", num_envs=64, num_steps=128,
                    num_minibatches=8, update_epochs=4, hidden_sizes=[256, 256])),
}

WORKER = """
import json, sys, time, tempfile
import torch
import policygrad as pg
algo, fields, device = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
p = torch.nn.Parameter(torch.zeros(2, device=device)); p.grad = torch.zeros_like(p)
torch.optim.Adam([p]).step()  # the first optimizer imports torch._dynamo: seconds, outside the clock
if device == "cuda":
    torch.cuda.synchronize()
with tempfile.TemporaryDirectory() as tmp:
    cfg = pg.make_config(algo, device=device, progress=False, tensorboard=False, eval_episodes=1, **fields)
    start = time.perf_counter()
    result = pg.train(cfg, run_dir=tmp + "/run")
    seconds = time.perf_counter() - start
print(json.dumps({"steps": result.global_step, "seconds": seconds}))
"""


def run_once(algo: str, fields: dict, device: str) -> float:
    proc = subprocess.run([sys.executable, "-c", WORKER, algo, json.dumps(fields), device],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise RuntimeError(f"{algo} on {device} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["steps"] / out["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "device_throughput.md")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark compares the CPU with a GPU")
    lines = ["# Training throughput: CPU vs CUDA", "",
             f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads "
             f"available (runs use torch_threads=1, the default), GPU {torch.cuda.get_device_name(0)}; "
             f"torch {torch.__version__}, Python {platform.python_version()}. "
             f"{args.rounds} round(s), devices alternating; steps/s as min / median / max. "
             f"Written by `benchmarks/device_throughput.py` on {time.strftime('%Y-%m-%d')}.", "",
             "| case | CPU steps/s | CUDA steps/s | CUDA / CPU (medians) |", "| --- | --- | --- | --- |"]
    for name, (algo, fields) in CASES.items():
        rates = {"cpu": [], "cuda": []}
        for r in range(args.rounds):
            for device in (("cpu", "cuda") if r % 2 == 0 else ("cuda", "cpu")):
                rates[device].append(run_once(algo, fields, device))
        cells = [f"{min(v):,.0f} / {statistics.median(v):,.0f} / {max(v):,.0f}" for v in rates.values()]
        ratio = statistics.median(rates["cuda"]) / statistics.median(rates["cpu"])
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ratio:.2f} |")
        print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
