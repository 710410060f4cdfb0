"""What ``grad_noise_scale`` costs in training time (the numbers in the field's help, PPOConfig and
A2CConfig).

On a shared machine, timing two whole trainings against each other measures mostly the neighbours.
This measures the work instead, interleaved so that both sides see the same load: the median time of
one plain gradient step (the minibatch loss, backward, clip, optimizer step) and of the diagnostic's
extra half-batch gradient on the same rows, hundreds of times each, and the median time of one
rollout's collection. The cost of an iteration is then

    PPO:  min(num_minibatches, NOISE_PAIRS) half-batch gradients
          over   collection + update_epochs * num_minibatches steps
    A2C:  one half-batch gradient every NOISE_EVERY iterations
          over   collection + one step

Run: ``python benchmarks/grad_noise_scale_cost.py`` (a minute). Measured on this project's 2-core
machine, shared: PPO CartPole-v1 +4.1% and +4.6%, PPO Pendulum-v1 +0.8% (twice), A2C CartPole-v1
+7.3% and +5.8% per iteration; a half-batch gradient costs 0.53-0.73 of a full step (on these small
networks a step's time is mostly per-call overhead, not arithmetic).
"""

from __future__ import annotations

import functools
import statistics
import time

import torch

import policygrad as pg
from policygrad.algos.a2c import NOISE_EVERY
from policygrad.algos.base import gradient_step
from policygrad.algos.on_policy import FlatBatch, actor_critic_loss, estimate_advantages
from policygrad.algos.ppo import NOISE_PAIRS, ppo_minibatch_loss
from policygrad.core.envs import make_vec_env
from policygrad.core.networks import build_agent

REPEATS = 300


def measure(algo: str, env_id: str) -> str:
    cfg = pg.make_config(algo, env_id=env_id, grad_noise_scale=True)
    torch.manual_seed(0)
    envs = make_vec_env(env_id, cfg.num_envs)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space, True)
    learner = pg.ALGORITHMS[algo](cfg, envs, agent)
    batch = learner.loop.collector.collect()
    estimate = estimate_advantages(batch, agent, cfg)
    data = FlatBatch.from_batch(batch, estimate.advantages, estimate.targets)
    rows = data.rows(slice(0, cfg.minibatch_size if algo == "ppo" else len(data)))

    def plain() -> float:
        start = time.perf_counter()
        if algo == "ppo":
            loss, _ = ppo_minibatch_loss(cfg, agent, rows)
        else:
            loss, _ = actor_critic_loss(agent, rows, cfg.norm_adv, cfg.vf_coef, cfg.ent_coef)
        gradient_step(learner.optimizer, loss, learner.params, cfg.max_grad_norm)
        return time.perf_counter() - start

    policy_loss = functools.partial(learner.policy_loss, clip=cfg.clip_coef) if algo == "ppo" else learner.policy_loss

    def half() -> float:
        start = time.perf_counter()
        learner.hook.half_batch_sq_norm(rows, policy_loss)
        return time.perf_counter() - start

    def collect() -> float:
        start = time.perf_counter()
        learner.loop.collector.collect()
        return time.perf_counter() - start

    plain(), half()  # the first calls build what later ones reuse
    steps, halves = [], []
    for _ in range(REPEATS):
        steps.append(plain())
        halves.append(half())
    t_step, t_half = statistics.median(steps), statistics.median(halves)
    t_collect = statistics.median(collect() for _ in range(10))
    envs.close()
    if algo == "ppo":
        extra = min(cfg.num_minibatches, NOISE_PAIRS) * t_half
        iteration = t_collect + cfg.update_epochs * cfg.num_minibatches * t_step
    else:
        extra, iteration = t_half / NOISE_EVERY, t_collect + t_step
    return (f"{algo} {env_id}: step {t_step * 1e3:.3f} ms, half-batch gradient {t_half * 1e3:.3f} ms "
            f"({t_half / t_step:.2f} of a step), collection {t_collect * 1e3:.2f} ms: "
            f"+{100 * extra / iteration:.1f}% per iteration")


if __name__ == "__main__":
    torch.set_num_threads(1)
    for algo, env_id in (("ppo", "CartPole-v1"), ("ppo", "Pendulum-v1"), ("a2c", "CartPole-v1")):
        print(measure(algo, env_id), flush=True)
