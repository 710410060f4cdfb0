"""PPO with the clipped surrogate objective (Schulman et al. 2017), as in CleanRL's ``ppo.py``.

Every iteration collects ``num_envs`` x ``num_steps`` steps, computes GAE advantages once, then takes
``update_epochs`` passes over the batch in ``num_minibatches`` shuffled minibatches, minimising

    loss = -E[min(r A, clip(r, 1 - clip_coef, 1 + clip_coef) A)]      r = pi(a|s) / pi_old(a|s)
           + vf_coef * 0.5 * E[(V(s) - target)^2]                     (clipped too with clip_vloss)
           - ent_coef * E[H(pi(.|s))]

The clip removes the incentive to move r outside [1 - eps, 1 + eps] in the direction the advantage
favours, so the many gradient steps on one batch cannot push the policy far from the one that
collected it. ``target_kl`` stops the epochs early when the policy moved too far anyway.
Implementation details follow Huang et al. 2022, "The 37 implementation details of PPO".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from policygrad.algos.base import Iteration, Update, gradient_step
from policygrad.algos.grad_noise import GradientNoiseScale
from policygrad.algos.on_policy import (
    FixedHorizonAlgorithm,
    FixedHorizonConfig,
    FixedHorizonLoop,
    FlatBatch,
    UpdateHook,
    critic_loss,
    estimator_option,
    linear_schedule,
)
from policygrad.algos.sequences import SequenceBatch
from policygrad.core import losses
from policygrad.core.config import option, reject_value
from policygrad.core.envs import VecEnv
from policygrad.core.networks import ActorCritic, PolicyNetwork
from policygrad.fast.fused_loss import fused_loss_supported, fused_ppo_loss

# grad_noise_scale measures at most this many of the first epoch's steps (a few pairs a rollout are
# plenty once averaged over iterations; measuring Pendulum's 64 minibatches would cost 6% more time).
NOISE_PAIRS = 8
# Averaged over the minibatch steps of an iteration and logged every iteration.
MINIBATCH_KEYS = ("losses/policy", "losses/value", "losses/entropy", "diag/approx_kl", "diag/clipfrac",
                  "diag/grad_norm")


@dataclass(frozen=True)
class PPOConfig(FixedHorizonConfig):
    num_envs: int = option(8, "parallel copies of the environment, stepped as one vector env")
    num_steps: int = option(128, "steps per environment in each rollout (batch_size = num_envs * num_steps)")
    learning_rate: float = option(2.5e-3, "optimizer step size (annealed to 0 with anneal_lr)")
    gamma: float = option(0.98, "discount factor in [0, 1]")
    advantage_estimator: str = estimator_option("gae")
    gae_lambda: float = option(0.9, "GAE lambda: 0 is the TD error, 1 the Monte-Carlo advantage")
    num_minibatches: int = option(4, "minibatches per epoch; must divide batch_size (the batch's real "
                                  "transitions are split evenly among them)")
    update_epochs: int = option(10, "passes over each batch")
    norm_adv: bool = option(True, "standardise the advantages of each minibatch")
    clip_coef: float = option(0.2, "clip the probability ratio to [1 - clip_coef, 1 + clip_coef]")
    anneal_clip: bool = option(False, "decay clip_coef linearly to 0 over total_steps (or schedule_steps), like the "
                               "learning rate (as RL Baselines3 Zoo's tuned CartPole)")
    clip_vloss: bool = option(False, "clip the value update to clip_coef around the old value (PPO2)")
    ent_coef: float = option(0.0, "weight of the entropy bonus")
    vf_coef: float = option(0.5, "weight of the value loss")
    max_grad_norm: float = option(0.5, "clip the global gradient norm to this (0: no clipping)")
    # Stops at 1x target_kl, as CleanRL does (SB3 and Spinning Up stop at 1.5x): the number given is the
    # limit kept, not two thirds of it. Checked where SB3 checks, on each minibatch before its step, so
    # the step that would move the policy further is never taken (CleanRL checks after each epoch).
    # To reproduce an SB3 run with target_kl=x, pass 1.5x.
    target_kl: float = option(0.0, "stop the update's epochs at the first minibatch whose approx KL from the "
                              "collecting policy exceeds this, before its step (1x this value, as CleanRL; SB3 "
                              "stops at 1.5x: pass 1.5 times SB3's value to match it) (0: never)")
    grad_noise_scale: bool = option(False, "log diag/grad_noise_scale, the gradient noise scale B_simple = "
                                    "tr(Sigma)/|G|^2 of the policy's gradient in transitions (McCandlish et al. "
                                    "2018), from the first epoch's minibatch gradients and one more on half of "
                                    "each; training is unchanged. Cost (benchmarks/grad_noise_scale_cost.py): "
                                    "about 4-5% more time per iteration with the CartPole-v1 preset (4 "
                                    "minibatches), under 1% with Pendulum-v1's (64; at most 8 steps an iteration "
                                    "are measured)")
    bptt_length: int = option(0, "recurrent: steps per sequence an update replays, cut from each environment's "
                              "rollout and started from the stored state (must divide num_steps; 0: the whole "
                              "rollout, and num_minibatches must divide num_envs)")
    algo: str = field(default="ppo", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive_int("num_minibatches", "update_epochs")
        self._non_negative("target_kl")
        if not isinstance(self.clip_coef, (int, float)) or not self.clip_coef > 0:
            reject_value("clip_coef", self.clip_coef, "a number > 0")
        if self.batch_size % self.num_minibatches != 0:
            reject_value("num_minibatches", self.num_minibatches,
                         f"a divisor of batch_size = num_envs * num_steps = {self.batch_size}")

    @property
    def minibatch_size(self) -> int:
        """Transitions per gradient step: batch_size // num_minibatches."""
        return self.batch_size // self.num_minibatches


def ppo_minibatch_loss(cfg: PPOConfig, network: PolicyNetwork, mb: FlatBatch | SequenceBatch,
                       advantages: torch.Tensor | None = None, clip_coef: float | None = None,
                       fused: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO loss on one minibatch, and its named terms, still tensors (the update reads them once,
    at its end): ``losses/policy``, ``losses/value``, ``losses/entropy`` and ``log_probs`` (detached:
    approx KL and clipfrac are computed from them and ``mb.log_probs``, measuring the policy that
    produced the loss, before this minibatch's step). ``advantages``: the minibatch's advantages
    already normalised, when the caller has them; ``clip_coef``: this update's (annealed) clip, if
    not ``cfg.clip_coef``. ``fused``: the same loss with its last steps fused
    (:mod:`policygrad.fast.fused_loss`), for a network :func:`fused_loss_supported` accepts."""
    clip = cfg.clip_coef if clip_coef is None else clip_coef
    if advantages is None:
        # Normalising per minibatch (not per batch) is what the reference implementations do (detail 7).
        advantages = losses.normalize(mb.advantages) if cfg.norm_adv else mb.advantages
    if fused:
        if not isinstance(network, ActorCritic):  # fused_loss_supported accepts the built-in network only
            raise RuntimeError(f"the fused PPO loss takes the built-in ActorCritic, not {type(network).__name__}")
        return fused_ppo_loss(network, mb.obs, mb.actions, mb.log_probs, advantages, mb.targets, clip,
                              cfg.vf_coef, cfg.ent_coef)
    dist, values = mb.dist_and_value(network)
    log_probs = dist.log_prob(mb.actions)
    policy = losses.ppo_clip_loss(log_probs, mb.log_probs, advantages, clip)
    value = critic_loss(network, values, mb, clip if cfg.clip_vloss else None)
    loss, entropy = losses.with_entropy_bonus(policy + cfg.vf_coef * value, dist.entropy, cfg.ent_coef)
    return loss, {"losses/policy": policy, "losses/value": value, "losses/entropy": entropy,
                  "log_probs": log_probs.detach()}


def minibatch_bounds(rows: int, num_minibatches: int) -> list[tuple[int, int]]:
    """``num_minibatches`` contiguous, non-empty ``(start, stop)`` ranges covering ``rows`` rows, their
    sizes differing by at most one (fewer ranges when there are fewer rows)."""
    edges = [rows * i // num_minibatches for i in range(num_minibatches + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


class PPO(FixedHorizonAlgorithm):
    """Proximal policy optimisation, clipped: update_epochs x num_minibatches steps per rollout."""

    Config = PPOConfig

    @staticmethod
    def needs_value(cfg: PPOConfig) -> bool:
        return True

    def __init__(self, cfg: PPOConfig, envs: VecEnv, network: PolicyNetwork) -> None:
        self.cfg, self.network = cfg, network
        self.loop = FixedHorizonLoop(cfg, envs, network)
        self.optimizer = self.loop.optimizer
        self.params = list(network.parameters())  # listed once, not per gradient step
        # Whether the minibatches take the fused loss (the plain one's numbers, faster), decided once:
        # where the network's head has it. load_state keeps a run begun before it on the plain loss.
        self.fused_loss = fused_loss_supported(network, cfg.clip_vloss)
        self.hook = (GradientNoiseScale(cfg.seed, network, cfg.max_grad_norm, max_pairs=NOISE_PAIRS)
                     if cfg.grad_noise_scale else UpdateHook())

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        """The loop's and the hook's state; a run from a checkpoint saved before the fused loss existed
        goes on with the plain one (:data:`~policygrad.algos.on_policy.SPEED_PATHS`)."""
        super().load_state(data, tensors, exact, fresh_seed)
        self.fused_loss = self.loop.fast_paths and fused_loss_supported(self.network, self.cfg.clip_vloss)

    def iterate(self) -> Iteration:
        cfg = self.cfg
        # The same linear decay as the learning rate, from the steps done before this rollout.
        clip = linear_schedule(cfg.clip_coef, self.loop.steps_done, cfg.anneal_steps, cfg.anneal_clip)

        def update(data: FlatBatch | SequenceBatch) -> Update:
            result = self.update(data, clip)
            result.metrics["charts/clip_coef"] = clip
            result.metrics["diag/explained_variance"] = data.explained_variance()
            return result

        return self.loop.iterate(update)

    def policy_loss(self, rows: FlatBatch, index: torch.Tensor, clip: float) -> torch.Tensor:
        """The terms of the minibatch loss on ``rows`` that reach the policy's own parameters (the
        clipped surrogate and the entropy bonus), on ``rows[index]``, with the advantages normalised
        over all of ``rows`` as that loss has them (for the hook: :class:`UpdateHook`)."""
        cfg = self.cfg
        advantages = losses.normalize(rows.advantages) if cfg.norm_adv else rows.advantages
        dist = self.network.dist(rows.obs_at(index))
        policy = losses.ppo_clip_loss(dist.log_prob(rows.actions[index]), rows.log_probs[index], advantages[index],
                                      clip)
        return losses.with_entropy_bonus(policy, dist.entropy, cfg.ent_coef)[0]

    def update(self, data: FlatBatch | SequenceBatch, clip_coef: float | None = None) -> Update:
        """``update_epochs`` passes over ``data``, each shuffled and cut into ``num_minibatches``
        minibatches; returns the loss terms averaged over the minibatches seen, approx KL and clipfrac
        over their transitions, grad_norm over the steps taken, and the number of epochs started;
        and how many of its gradient steps were skipped as non-finite.

        Each epoch gathers the shuffled rows once and takes its minibatches as slices of them (views,
        no copy). With one minibatch the order cannot matter, so nothing is shuffled or copied and the
        normalised advantages are computed once. The terms stay tensors until the end, where they
        are reduced together and read once.
        """
        cfg = self.cfg
        clip = cfg.clip_coef if clip_coef is None else clip_coef
        bounds = minibatch_bounds(len(data), cfg.num_minibatches)
        whole = len(bounds) == 1
        advantages = losses.normalize(data.advantages) if whole and cfg.norm_adv else None
        policy_loss = functools.partial(self.policy_loss, clip=clip)
        records: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
        grad_norm, stepped, skipped, epochs = 0.0, 0, 0, 0
        stop = False
        while epochs < cfg.update_epochs and not stop and bounds:
            epochs += 1
            if isinstance(data, SequenceBatch):  # whole sequences, shuffled (algos/sequences.py)
                minibatches: Iterable[FlatBatch | SequenceBatch] = data.minibatches(cfg.num_minibatches)
            else:
                shuffled = data if whole else data.rows(torch.randperm(len(data), device=data.log_probs.device))
                minibatches = (shuffled if whole else shuffled.rows(slice(start, end)) for start, end in bounds)
            for mb in minibatches:
                loss, terms = ppo_minibatch_loss(cfg, self.network, mb, advantages, clip, self.fused_loss)
                records.append((terms, mb.log_probs))
                # target_kl (see PPOConfig): the KL of the policy about to be stepped; the step that would
                # push it further from pi_old is never taken.
                if cfg.target_kl > 0 and losses.approx_kl(terms["log_probs"], mb.log_probs) > cfg.target_kl:
                    stop = True
                    break
                if isinstance(mb, FlatBatch):  # (a recurrent run has the plain hook: grad_noise_scale is refused)
                    self.hook.before_step(mb, policy_loss, epochs)
                step = gradient_step(self.optimizer, loss, self.params, cfg.max_grad_norm)
                self.hook.after_step(step, len(mb))
                grad_norm += step.norm
                skipped += not step.finite
                stepped += 1
        metrics = dict.fromkeys(MINIBATCH_KEYS, math.nan)
        if records:
            with torch.no_grad():
                means = [torch.stack([terms[key] for terms, _ in records]).mean() for key in MINIBATCH_KEYS[:3]]
                new = torch.cat([terms["log_probs"] for terms, _ in records])
                old = torch.cat([old_log_probs for _, old_log_probs in records])
                means += losses.ratio_diagnostics(new, old, clip)
                metrics.update(zip(MINIBATCH_KEYS, torch.stack(means).tolist()))
        metrics["diag/grad_norm"] = grad_norm / stepped if stepped else math.nan
        metrics["diag/epochs"] = float(epochs)
        self.hook.after_update(metrics)
        return Update(metrics, skipped_steps=skipped)
