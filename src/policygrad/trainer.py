"""``train(config)``: the loop every synchronous algorithm shares, and the run directory it writes.

A run directory holds ``config.json`` (every resolved field, versions, the device used),
``metrics.csv``, ``episodes.csv``, TensorBoard events, ``checkpoint/`` (safetensors + JSON),
``eval.json`` and ``learning_curve.png``.
"""

from __future__ import annotations

import math
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import torch

import policygrad
from policygrad.agent import CHECKPOINT_DIR, Agent
from policygrad.algos import algorithm
from policygrad.checkpoint import save_checkpoint, write_json
from policygrad.config import Config
from policygrad.envs import env_spaces, make_vec_env
from policygrad.evaluation import EvalResult, evaluate
from policygrad.logger import RunLogger
from policygrad.networks import build_agent
from policygrad.plots import plot_runs
from policygrad.presets import preset_values
from policygrad.runtime import resolve_device, seed_everything


@dataclass
class TrainResult:
    run_dir: Path
    agent: Agent
    evaluation: EvalResult | None
    global_step: int
    seconds: float


def default_run_dir(cfg: Config) -> Path:
    env = cfg.env_id.replace("/", "_").replace(":", "_")
    return Path("runs") / f"{env}__{cfg.algo}__{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the run directory; an existing, non-empty one is an error unless ``overwrite``."""
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ValueError(f"run_dir={str(path)!r} already exists and is not empty: choose another "
                             "--run-dir or pass --overwrite")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_record(cfg: Config, device: torch.device) -> dict:
    return {
        "config": cfg.to_dict(),
        "preset_values": preset_values(cfg.algo, cfg.env_id, cfg.preset)[1],
        "device_used": str(device),
        "versions": {"policygrad": policygrad.__version__, "torch": torch.__version__,
                     "gymnasium": gymnasium.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }


def synchronous_loop(config: Config, algo_cls, network, logger: RunLogger, device: torch.device):
    """Collect and update until ``total_steps``; returns (global steps, updates, optimizer)."""
    envs = make_vec_env(config.env_id, config.num_envs, device=device)
    algo = algo_cls(config, envs, network)
    global_step = updates = 0
    try:
        while global_step < config.total_steps:
            tick = time.perf_counter()
            result = algo.iterate()
            global_step += result.steps
            updates += 1
            logger.episodes(result.episodes)  # the VecEnv counts the same steps as global_step
            returns = [e.ret for e in result.episodes]
            lengths = [e.length for e in result.episodes]
            metrics = {
                "charts/episodic_return": float(np.mean(returns)) if returns else math.nan,
                "charts/episodic_length": float(np.mean(lengths)) if lengths else math.nan,
                **result.metrics,
                "perf/sps": result.steps / max(time.perf_counter() - tick, 1e-9),
            }
            logger.update(global_step, metrics, result.steps)
    finally:
        envs.close()
    return global_step, updates, algo.optimizer


def train(config: Config, run_dir: str | Path | None = None, overwrite: bool = False) -> TrainResult:
    """Train ``config``'s algorithm, write its run directory and evaluate it deterministically."""
    if not isinstance(config, Config):
        raise ValueError(f"train() takes a config (e.g. policygrad.ReinforceConfig()), not {type(config).__name__}")
    algo_cls = algorithm(config.algo)
    device = resolve_device(config.device)
    path = prepare_run_dir(Path(run_dir or config.run_dir or default_run_dir(config)), overwrite)
    torch.set_num_threads(config.torch_threads)
    seed_everything(config.seed)

    observation_space, action_space = env_spaces(config.env_id)
    network = build_agent(config, observation_space, action_space,
                          with_value=algo_cls.needs_value(config)).to(device)
    write_json(path / "config.json", run_record(config, device))
    logger = RunLogger(path, config.total_steps, config.tensorboard, config.progress)
    start = time.perf_counter()
    optimizer, completed = None, False
    try:
        if hasattr(algo_cls, "train_loop"):  # asynchronous algorithms (A3C) own their loop
            global_step, updates, optimizer = algo_cls.train_loop(config, network, logger)
        else:
            global_step, updates, optimizer = synchronous_loop(config, algo_cls, network, logger, device)
        completed = True
    finally:
        # Also on a crash or Ctrl-C: the weights trained so far are kept (the manifest says so).
        logger.close()
        counters = {"global_step": logger.global_step, "updates": logger.updates, "completed": completed}
        save_checkpoint(path / CHECKPOINT_DIR, network, optimizer, config.to_dict(), counters)
    seconds = time.perf_counter() - start

    agent = Agent(network, config, device)
    evaluation = evaluate(agent, episodes=config.eval_episodes, deterministic=True)
    write_json(path / "eval.json", evaluation.to_dict())
    plot_runs([path], path / "learning_curve.png")
    return TrainResult(path, agent, evaluation, global_step, seconds)
