"""A3C (Mnih et al. 2016): asynchronous advantage actor-critic with truly parallel workers.

``num_workers`` processes each own their environments and a local copy of the network. A worker
copies the global weights, collects ``num_steps`` steps, computes n-step (or GAE) advantages and the
gradient of the actor-critic loss on its local copy, hands that gradient to the global network and
steps a shared optimizer, without locks (Hogwild, Recht et al. 2011). The global network and the
optimizer's statistics live in shared memory, so every worker's step is visible to all.

The parent process only listens: workers send finished episodes and metrics through a queue, and a
shared counter makes the global step count exact. The run stops, and every worker with it, at the
end of training, on Ctrl-C, when a worker raises (its traceback is reported), or when a worker dies
(its exit code is reported). Workers also stop by themselves if the parent disappears.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.multiprocessing as mp

from policygrad.algos.base import (
    AsynchronousAlgorithm,
    AsyncResult,
    MetricsSink,
    clip_and_check,
    make_optimizer,
    nonfinite_term,
)
from policygrad.algos.on_policy import (
    FixedHorizonConfig,
    actor_critic_loss,
    batch_rows,
    estimate_advantages,
    has_transitions,
    linear_schedule,
    set_learning_rate,
)
from policygrad.algos.rollout import Batch
from policygrad.algos.sequences import make_collector
from policygrad.core.config import option, reject_value
from policygrad.core.envs import Episode, env_kwargs_for, env_spaces, make_vec_env
from policygrad.core.errors import NonFiniteError, TrainingError, UserInputError
from policygrad.core.masks import masking_for
from policygrad.core.networks import PolicyNetwork
from policygrad.core.processes import interrupts_deferred, starting_children, stop_children
from policygrad.core.runtime import seed_everything
from policygrad.core.structured import obs_map
from policygrad.core.user_network import UserNetwork, build_network, check_importable

METRIC_KEYS = ("losses/policy", "losses/value", "losses/entropy", "diag/explained_variance",
               "diag/grad_norm", "charts/learning_rate")


@dataclass(frozen=True)
class A3CConfig(FixedHorizonConfig):
    num_workers: int = option(2, "worker processes, each with its own envs and network copy")
    num_envs: int = option(4, "environments per worker")
    num_steps: int = option(5, "steps per environment before each worker's gradient (n of n-step returns)")
    learning_rate: float = option(1e-3, "step size of the shared optimizer")
    optimizer: str = option("adam", "adam | rmsprop (the statistics are shared between workers)")
    gae_lambda: float = option(1.0, "GAE lambda (1.0: plain n-step returns, as in the A3C paper)")
    norm_adv: bool = option(False, "standardise advantages per worker batch")
    ent_coef: float = option(0.01, "weight of the entropy bonus")
    vf_coef: float = option(0.5, "weight of the value loss")
    max_grad_norm: float = option(0.5, "clip each worker's gradient norm to this (0: no clipping)")
    log_every: int = option(2000, "environment steps between rows of metrics.csv")
    algo: str = field(default="a3c", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive_int("num_workers", "log_every")
        if self.reward_norm in ("popart", "standardize"):
            reject_value("reward_norm", self.reward_norm, "none | scale for a3c (popart's statistics and per-batch "
                         "standardisation do not survive Hogwild updates; use norm_adv for the latter)")
        if self.device not in ("auto", "cpu"):
            raise UserInputError(f"device={self.device!r} is invalid for a3c: workers run on the CPU "
                                 "(use cpu; auto means cpu for a3c)")


class WorkerFailed(TrainingError):
    """A worker raised or died; the run was stopped."""


def share_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Create the optimizer's per-parameter state now and move it to shared memory, so that every
    worker updates the same statistics (lazily created state would be private to each process)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state[p]
            if state:  # loaded from a checkpoint: share it as it is
                pass
            elif isinstance(optimizer, torch.optim.Adam):
                state["step"] = torch.zeros(())
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            else:  # RMSprop
                state["step"] = torch.zeros(())
                state["square_avg"] = torch.zeros_like(p)
            for value in state.values():
                if torch.is_tensor(value):
                    value.share_memory_()


def worker_loss(cfg: A3CConfig, local: PolicyNetwork, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """The A2C loss on one worker's rollout (GAE by default; lambda = 1 gives the paper's n-step returns)."""
    estimate = estimate_advantages(batch, local, cfg)
    return actor_critic_loss(local, batch_rows(batch, estimate.advantages, estimate.targets, cfg),
                             cfg.norm_adv, cfg.vf_coef, cfg.ent_coef)


def worker_main(rank: int, cfg: A3CConfig, global_net: PolicyNetwork, optimizer: torch.optim.Optimizer,
                counter, stop, messages, parent_pid: int) -> None:
    """One A3C worker: sync, collect, compute gradients, apply them to the shared network."""
    try:
        torch.set_num_threads(1)
        worker_seed = cfg.seed + 1000 * (rank + 1)  # distinct per worker, all from the run's seed
        seed_everything(worker_seed)
        # a spawned process starts without the parent's env_kwargs context: the config carries them
        with env_kwargs_for(cfg.env_id, cfg.env_kwargs), masking_for(cfg.action_masking):
            envs = make_vec_env(cfg.env_id, cfg.num_envs, training=True)
        # A user's network is copied (its class came with the global network); the built-in one is rebuilt
        local = (copy.deepcopy(global_net) if isinstance(global_net, UserNetwork)
                 else build_network(cfg, envs.single_observation_space, envs.single_action_space, with_value=True))
        local.load_state_dict(global_net.state_dict())
        collector = make_collector(envs, local, cfg.num_steps, worker_seed)  # recurrent: with its state
        global_params, local_params = list(global_net.parameters()), list(local.parameters())
        nonfinite = 0  # this worker's updates in a row whose loss or gradient was NaN/inf (each skipped)
        while not stop.is_set() and os.getppid() == parent_pid:
            # Parameters only: normalization statistics stay per worker (like one VecNormalize each),
            # and each worker also merges its observations into the global ones used for evaluation.
            with torch.no_grad():
                for g, p in zip(global_params, local_params):
                    p.copy_(g)
            batch = collector.collect()
            if global_net.obs_normalizer is not None:
                real = batch.flat(batch.valid)
                global_net.observe(obs_map(lambda v: v[real], batch.flat(batch.obs)))  # noqa: B023 (used at once)
            with counter.get_lock():
                counter.value += batch.rewards.numel()
                step_now = counter.value
            terms: dict[str, float] = {}
            if has_transitions(batch):
                loss, terms = worker_loss(cfg, local, batch)
                local.zero_grad(set_to_none=True)
                loss.backward()
                check = clip_and_check(loss, local_params, cfg.max_grad_norm)
                terms["diag/grad_norm"] = check.norm
                if check.finite:
                    nonfinite = 0
                    for g, p in zip(global_params, local_params):
                        g.grad = p.grad  # this process's view of the global parameters; the step writes shared memory
                    lr = linear_schedule(cfg.learning_rate, step_now, cfg.anneal_steps, cfg.anneal_lr)
                    set_learning_rate(optimizer, lr)
                    optimizer.step()
                    terms["charts/learning_rate"] = lr
                else:
                    # As gradient_step does for the synchronous algorithms: a NaN written into the
                    # shared network would reach every worker, so skip the step, and stop the run
                    # (all workers, via the error message) after a few in a row.
                    nonfinite += 1
                    if nonfinite >= cfg.max_nonfinite_updates:
                        raise NonFiniteError(
                            f"A3C worker {rank} at step {step_now}: {nonfinite_term(terms)} went non-finite in "
                            f"{nonfinite} updates in a row (max_nonfinite_updates={cfg.max_nonfinite_updates}); "
                            "the shared network keeps its last finite parameters")
                    terms = {}  # nothing was learned: no loss terms to average
            episodes = [(e.ret, e.length) for e in envs.pop_episodes()]
            messages.put(("update", rank, batch.rewards.numel(), step_now, episodes, terms))
            if step_now >= cfg.total_steps:
                break
        envs.close()
    except KeyboardInterrupt:
        pass  # the parent got the same Ctrl-C and stops everyone
    except BaseException:
        messages.put(("error", rank, traceback.format_exc()))
        raise


class RunAggregator:
    """Turns the stream of worker updates into rows of metrics.csv, one every ``log_every`` steps."""

    def __init__(self, logger: MetricsSink, log_every: int, start_step: int = 0) -> None:
        self.logger, self.log_every = logger, log_every
        self.sums: dict[str, float] = {}
        self.count, self.steps = 0, start_step
        self.returns: list[float] = []
        self.next_row = start_step + log_every
        self.last_time, self.last_step = time.perf_counter(), start_step

    def add(self, steps: int, step_now: int, episodes: list[tuple[float, int]],
            terms: dict[str, float]) -> None:
        self.logger.episodes([Episode(-1, ret, length, step_now) for ret, length in episodes])
        self.returns += [ret for ret, _ in episodes]
        if terms:  # empty when the worker's rollout held no transition to learn from
            for key in METRIC_KEYS:
                self.sums[key] = self.sums.get(key, 0.0) + terms[key]
            self.count += 1
        self.steps += steps
        if self.steps >= self.next_row:
            self.flush()

    def flush(self, final: bool = False) -> None:
        if self.count == 0:
            return
        now = time.perf_counter()
        # The final row's interval includes waiting for workers to stop: no honest speed to report.
        sps = math.nan if final else (self.steps - self.last_step) / max(now - self.last_time, 1e-9)
        metrics = {"charts/episodic_return": float(np.mean(self.returns)) if self.returns else math.nan,
                   **{k: v / self.count for k, v in self.sums.items()},
                   "perf/sps": sps}
        self.logger.update(self.steps, metrics, self.steps - self.last_step)
        self.sums, self.count, self.returns = {}, 0, []
        self.last_time, self.last_step = now, self.steps
        self.next_row = self.steps + self.log_every


def check_workers(workers: list, messages) -> None:
    """Raise WorkerFailed if any worker has exited with an error or was killed. A worker that raised
    sent its traceback before exiting: look for it in what is still queued, and report that."""
    for rank, proc in enumerate(workers):
        if proc.exitcode not in (None, 0):
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    message = messages.get(timeout=0.1)
                except queue_module.Empty:
                    break
                if message[0] == "error":
                    raise_worker_error(message)
            raise WorkerFailed(f"A3C worker {rank} (pid {proc.pid}) died with exit code {proc.exitcode}; "
                               "all workers were stopped")


def raise_worker_error(message: tuple) -> None:
    _, rank, trace = message
    raise WorkerFailed(f"A3C worker {rank} raised; all workers were stopped:\n{trace}")


def drain(messages) -> None:
    """Empty the queue: what stopping workers still send is of no use once the run is over."""
    try:
        while True:
            messages.get_nowait()
    except (queue_module.Empty, OSError, EOFError):
        pass


class A3C(AsynchronousAlgorithm):
    """Asynchronous advantage actor-critic: Hogwild workers in separate processes (Mnih et al. 2016)."""

    Config = A3CConfig

    @staticmethod
    def needs_value(cfg: A3CConfig) -> bool:
        return True

    @staticmethod
    def train_loop(cfg: A3CConfig, network: PolicyNetwork, sink: MetricsSink, start_step: int = 0,
                   restore_optimizer: Callable[[torch.optim.Optimizer], None] | None = None,
                   on_update: Callable[[torch.optim.Optimizer], None] | None = None) -> AsyncResult:
        """Run the workers to ``cfg.total_steps``; returns the global steps, the updates and the shared
        optimizer.

        Resuming (``start_step`` > 0, the optimizer state put back by ``restore_optimizer``)
        continues the step count; the workers' environments start new episodes from seeds derived from
        the run's and ``start_step`` (Hogwild updates are not reproducible anyway). ``on_update(optimizer)``
        is called after each worker update is logged (the trainer checkpoints from there).
        """
        env_spaces(cfg.env_id)  # fail here, not in a worker, if the env cannot be made
        check_importable(network, "a3c's worker processes import the network's class")
        network.share_memory()
        # Not flat: the workers step the shared-memory parameters and moments themselves, tensor by tensor.
        optimizer = make_optimizer(network.parameters(), cfg.learning_rate, cfg.optimizer, flat=False)
        if restore_optimizer is not None:
            restore_optimizer(optimizer)
        share_optimizer_state(optimizer)
        worker_cfg = dataclasses.replace(cfg, seed=cfg.seed + start_step) if start_step else cfg
        ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe
        counter, stop, messages = ctx.Value("q", start_step), ctx.Event(), ctx.Queue()
        workers = [ctx.Process(target=worker_main, name=f"a3c-worker-{rank}", daemon=True,
                               args=(rank, worker_cfg, network, optimizer, counter, stop, messages, os.getpid()))
                   for rank in range(cfg.num_workers)]
        aggregator = RunAggregator(sink, cfg.log_every, start_step)
        updates = 0
        try:
            with starting_children():
                for proc in workers:
                    proc.start()
            (sink.run_dir / "workers.json").write_text(json.dumps({"pids": [p.pid for p in workers]}))
            next_check = 0.0
            with interrupts_deferred() as interrupted:
                while not interrupted():
                    # Check liveness on a clock, not only when the queue is quiet: a busy worker keeps it full.
                    if time.monotonic() >= next_check:
                        check_workers(workers, messages)
                        next_check = time.monotonic() + 0.25
                    try:
                        message = messages.get(timeout=0.1)
                    except queue_module.Empty:
                        if all(p.exitcode == 0 for p in workers):
                            break
                        continue
                    if message[0] == "error":
                        raise_worker_error(message)
                    _, _, steps, step_now, episodes, terms = message
                    aggregator.add(steps, step_now, episodes, terms)
                    updates += 1
                    if on_update is not None:
                        on_update(optimizer)
                else:
                    raise KeyboardInterrupt
        finally:
            stop_children(workers, stop.set, drain=lambda: drain(messages))
            messages.cancel_join_thread()
            aggregator.flush(final=True)  # also on failure: the counters then say how far it got
        return AsyncResult(counter.value, updates, optimizer)
