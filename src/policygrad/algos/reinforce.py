"""REINFORCE (Williams 1992): whole episodes, then one gradient step on log pi(a|s) * signal.

The signal is the whole-episode return (``return_type=total``) or the reward-to-go G_t
(``reward_to_go``: an action cannot affect rewards that came before it, so dropping them lowers the
variance without bias), minus a baseline: none, the batch mean, or a learned V(s) trained by MSE on
the reward-to-go (Sutton & Barto 2018, section 13.4). Q14-Q18, Q21 of the guide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

from policygrad.algos.base import Algorithm, AlgorithmState, Iteration, gradient_step, make_optimizer
from policygrad.algos.rollout import collect_episodes
from policygrad.core import losses, returns
from policygrad.core.config import Config, option, reject_value
from policygrad.core.envs import VecEnv
from policygrad.core.errors import UserInputError
from policygrad.core.networks import PolicyNetwork
from policygrad.core.structured import obs_cat

log = logging.getLogger("policygrad")

# num_envs=0 (the default): as many copies as episodes_per_update, at most this many.
MAX_DERIVED_NUM_ENVS = 8


@dataclass(frozen=True)
class ReinforceConfig(Config):
    num_envs: int = option(0, "parallel copies; each plays its share of episodes_per_update, so at most that "
                           f"many (0: episodes_per_update copies, at most {MAX_DERIVED_NUM_ENVS})")
    learning_rate: float = option(4e-3, "Adam step size (4e-3 solves CartPole-v1 within 300k steps)")
    episodes_per_update: int = option(8, "whole episodes collected before each gradient step (Q16)")
    return_type: str = option("reward_to_go", "total (whole-episode return) | reward_to_go (G_t)")
    baseline: str = option("value", "none | mean (batch mean of returns; the same as none when "
                           "normalize_returns is on, which subtracts that mean too) | value (learned V(s))")
    normalize_returns: bool = option(True, "standardise the policy's signal (return - baseline) per batch")
    vf_coef: float = option(0.5, "weight of the value loss (baseline=value)")
    max_grad_norm: float = option(1.0, "clip the global gradient norm to this (0: no clipping)")
    algo: str = field(default="reinforce", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        self._positive_int("episodes_per_update")
        self._derive_num_envs()
        super().__post_init__()
        self._choice("return_type", ("total", "reward_to_go"))
        self._choice("baseline", ("none", "mean", "value"))
        if self.recurrent != "none":  # its update recomputes whole episodes from flat rows, without the state
            reject_value("recurrent", self.recurrent, "none for reinforce (recurrent policies: ppo, a2c, a3c)")
        if self.reward_norm == "popart" and self.baseline != "value":
            reject_value("reward_norm", self.reward_norm, f"none | scale | standardize with "
                         f"baseline={self.baseline!r} (popart normalizes the targets of a learned value baseline: add "
                         "--baseline value)")
        if self.num_envs > self.episodes_per_update:  # (one set by the caller: a derived one fits)
            episodes = self.episodes_per_update
            reject_value("num_envs", self.num_envs, f"at most episodes_per_update={episodes} (each copy plays a "
                         f"share of an update's episodes; a copy with none would only waste steps): lower "
                         f"--num-envs (num_envs) to at most {episodes}, or raise --episodes-per-update "
                         f"(episodes_per_update) to at least {self.num_envs}")

    def _derive_num_envs(self) -> None:
        """The one rule for ``num_envs`` left at 0, however the config is built (directly, by
        ``make_config`` or from a preset): ``episodes_per_update`` copies, at most
        :data:`MAX_DERIVED_NUM_ENVS`; said in a log line when that is fewer. The number is a field from
        then on, so config.json and checkpoints record it, and a copy of the config keeps it."""
        if self.num_envs != 0 or isinstance(self.num_envs, bool):
            return
        num_envs = min(MAX_DERIVED_NUM_ENVS, self.episodes_per_update)
        object.__setattr__(self, "num_envs", num_envs)  # frozen: set once, while the config is being built
        if num_envs < MAX_DERIVED_NUM_ENVS:
            log.warning("num_envs=%d (episodes_per_update=%d: each copy plays a share of an update's episodes); "
                        "set --num-envs (num_envs) to choose", num_envs, num_envs)


def counted_steps(terminated: torch.Tensor, truncated: torch.Tensor, valid: torch.Tensor) -> int:
    """The steps an update's episodes took: per copy, every step up to the end of its last episode in
    the batch (its autoreset steps between episodes included, as a fixed-horizon rollout counts them).

    ============ ========= ==========================================
    argument     shape     meaning
    ============ ========= ==========================================
    terminated   (T, N)    episode ended by the environment
    truncated    (T, N)    episode cut by a time limit
    valid        (T, N)    the step belongs to an episode of the batch
    ============ ========= ==========================================

    A copy that has played its share of ``episodes_per_update`` keeps stepping (the copies step
    together) until the slowest copy is done; those steps are discarded, so they are not counted
    either: ``total_steps`` is the same budget of used experience for REINFORCE as for the
    fixed-horizon algorithms (which use every step). ``perf/discarded_steps`` logs how many there were."""
    ends = (terminated | truncated) & valid
    rows = torch.arange(1, ends.shape[0] + 1, device=ends.device).unsqueeze(1)
    return int((ends * rows).amax(dim=0).sum())


class Reinforce(Algorithm):
    """Monte-Carlo policy gradient; one update per batch of whole episodes."""

    Config = ReinforceConfig

    @staticmethod
    def needs_value(cfg: ReinforceConfig) -> bool:
        return cfg.baseline == "value"

    def __init__(self, cfg: ReinforceConfig, envs: VecEnv, network: PolicyNetwork) -> None:
        self.cfg, self.envs, self.network = cfg, envs, network
        self.optimizer = make_optimizer(network.parameters(), cfg.learning_rate)
        self.next_seed: int | None = cfg.seed  # the first reset is seeded, later ones continue its RNG

    def iterate(self) -> Iteration:
        cfg = self.cfg
        batch, episodes, steps = collect_episodes(self.envs, self.network, cfg.episodes_per_update, seed=self.next_seed,
                                                  training=True)
        if batch is None:  # collect_episodes stores the batch unless told not to
            raise RuntimeError("collect_episodes returned no batch although store=True")
        self.next_seed = None
        T, N = batch.rewards.shape
        counted = counted_steps(batch.terminated, batch.truncated, batch.valid)
        weights = batch.valid.float().reshape(-1)

        # V(s_{t+1}) bootstraps truncated episodes: the values of the stored observations shifted by one.
        next_values = None
        if self.network.has_value:
            with torch.no_grad():
                all_obs = obs_cat([batch.flat(batch.obs), batch.next_obs])
                next_values = self.network.value(all_obs)[N:].reshape(T, N)

        rtg = returns.reward_to_go(rewards=batch.rewards, terminated=batch.terminated, truncated=batch.truncated,
                                   gamma=cfg.gamma, next_values=next_values)
        if cfg.return_type == "total":
            signal = returns.whole_episode_returns(rewards=batch.rewards, terminated=batch.terminated,
                                                   truncated=batch.truncated, gamma=cfg.gamma,
                                                   next_values=next_values, valid=batch.valid)
        else:
            signal = rtg
        if cfg.reward_norm == "standardize":  # the classic REINFORCE trick: returns standardised per batch
            valid = batch.valid
            signal = losses.normalize(signal.reshape(-1), valid.reshape(-1).float()).reshape(T, N)
            rtg = losses.normalize(rtg.reshape(-1), valid.reshape(-1).float()).reshape(T, N)
        if self.network.has_value:  # PopArt (if on) adapts to this batch's targets before the value pass
            self.network.update_value_stats(rtg.reshape(-1)[batch.valid.reshape(-1)])

        # One batched pass over every stored observation: log-probs and values, with gradient.
        dist, values = self.network.dist_and_value(batch.flat(batch.obs))
        log_probs = dist.log_prob(batch.flat(batch.actions))
        signal = signal.reshape(-1)
        if cfg.baseline == "mean":
            signal = signal - losses.masked_mean(signal, weights)
        elif cfg.baseline == "value":
            signal = signal - values.reshape(-1).detach()
        if cfg.normalize_returns:
            signal = losses.normalize(signal, weights)

        policy_loss = losses.policy_gradient_loss(log_probs, signal, weights)
        loss, entropy = losses.with_entropy_bonus(policy_loss, dist.entropy, cfg.ent_coef, weights)
        metrics = {"losses/policy": policy_loss.item(), "losses/entropy": entropy.item()}
        if cfg.baseline == "value":
            value_loss = losses.value_loss(self.network.normalize_values(values.reshape(-1)),
                                           self.network.normalize_values(rtg.reshape(-1)), weights)
            loss = loss + cfg.vf_coef * value_loss
            valid = batch.valid.reshape(-1)
            metrics["losses/value"] = value_loss.item()
            metrics["diag/explained_variance"] = losses.explained_variance(
                values.reshape(-1)[valid].detach(), rtg.reshape(-1)[valid])
        step = gradient_step(self.optimizer, loss, list(self.network.parameters()), cfg.max_grad_norm)
        metrics["diag/grad_norm"] = step.norm
        metrics["charts/learning_rate"] = cfg.learning_rate
        metrics["charts/batch_transitions"] = float(weights.sum())
        metrics["perf/discarded_steps"] = float(steps - counted)
        return Iteration(steps=counted, episodes=episodes, metrics=metrics, skipped_steps=int(not step.finite))

    def state(self) -> AlgorithmState:
        """Whether the first, seeded reset is still to come (``next_seed``)."""
        return {"next_seed": self.next_seed}, {}

    def load_state(self, data: dict[str, Any], tensors: dict[str, torch.Tensor], exact: bool,
                   fresh_seed: int) -> None:
        next_seed = data.get("next_seed")
        if next_seed is not None and not isinstance(next_seed, int):
            raise UserInputError(f"the checkpoint's next_seed={next_seed!r} is not an integer or null")
        # Not exact: the environments were not restored, so the next collection resets them itself.
        self.next_seed = next_seed if exact else fresh_seed
