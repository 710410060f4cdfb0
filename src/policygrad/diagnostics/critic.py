"""The critic V(s) that the value baseline and the critic's estimators (td, gae, nstep) read.

A run's own critic when it has one in the environment's reward units; otherwise (a fresh network,
REINFORCE without a value baseline, rewards scaled during training) a critic fitted here, by
regression on the discounted returns of episodes played by the same policy but kept apart from the
diagnosed ones (a critic fitted on the diagnosed episodes themselves would make the value baseline
depend on their actions, and so biased).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import nn

from policygrad.core import losses, returns
from policygrad.core.config import Config
from policygrad.core.networks import ActorCritic, PolicyNetwork
from policygrad.core.structured import Observation, obs_cat, obs_index, obs_rows
from policygrad.diagnostics.episodes import EpisodeBatch


@dataclass
class Critic:
    """``value``: observations ``(B, *obs)`` -> V ``(B,)``; ``source``: where it came from, in words."""

    value: Callable[[Observation], torch.Tensor]
    source: str


def run_critic_problem(network: PolicyNetwork, config: Config) -> str | None:
    """Why a run's network cannot serve as the critic here (None: it can): no value head, or a
    value learned in other units than the environment's rewards."""
    if not network.has_value:
        return "the network has no value head"
    if config.reward_norm == "scale":
        return "the run's critic predicts returns of rewards scaled during training (reward_norm=scale)"
    if config.reward_norm == "standardize" and config.algo == "reinforce":
        return "the run's critic predicts standardised returns (reward_norm=standardize)"
    return None


class FittedCritic(nn.Module):
    """V(s) = mean + std * f((s - obs_mean) / obs_std): an MLP on standardised inputs and targets,
    so that one learning rate fits CartPole's returns of hundreds and Pendulum's of minus a thousand."""

    obs_mean: torch.Tensor
    obs_std: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, hidden_sizes: tuple[int, ...],
                 encoder: str = "auto") -> None:
        super().__init__()
        self.net = ActorCritic(observation_space, action_space, hidden_sizes=hidden_sizes, with_value=True,
                               encoder=encoder)
        # Vectors are standardised here; an image encoder scales its pixels itself (uint8 / 255), and
        # standardised pixels would reach it as floats outside [0, 1].
        self.box = isinstance(observation_space, gym.spaces.Box) and self.net.mlp_encoder
        self.register_buffer("obs_mean", torch.zeros(()))
        self.register_buffer("obs_std", torch.ones(()))
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def standardised(self, obs: Observation) -> torch.Tensor:
        return self.net.value((obs - self.obs_mean) / self.obs_std if self.box else obs)

    def forward(self, obs: Observation) -> torch.Tensor:
        return self.mean + self.std * self.standardised(obs)


def _valid_rows(batches: Sequence[EpisodeBatch], tensors: Sequence[Observation]) -> Observation:
    """The valid rows of every batch's ``(T, N, ...)`` tensors (or observation dicts), one after the other."""
    return obs_cat([obs_index(t, eb.batch.valid) for eb, t in zip(batches, tensors)])


def fit_critic(batches: Sequence[EpisodeBatch], gamma: float, observation_space: gym.Space, action_space: gym.Space,
               hidden_sizes: tuple[int, ...] = (64, 64), seed: int = 0, epochs: int = 20,
               minibatch: int = 256, encoder: str = "auto") -> FittedCritic:
    """A critic regressed (Adam, mean squared error) on the discounted reward-to-go of ``batches``.
    A second pass refits on targets that bootstrap time-limit truncations from the first fit (an
    episode cut by a time limit would otherwise teach V that its last states are worth little), when
    there are truncations. ``encoder``: the policy's (``auto``, ``mlp``, ``nature``, ``impala``)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        critic = FittedCritic(observation_space, action_space, hidden_sizes, encoder)
        obs = _valid_rows(batches, [eb.batch.obs for eb in batches])
        if critic.box:
            critic.obs_mean = obs.float().mean(0)
            critic.obs_std = obs.float().std(0).clamp_min(1e-6) if len(obs) > 1 else torch.ones_like(critic.obs_mean)
        truncations = any(bool(eb.batch.truncated[eb.batch.valid].any()) for eb in batches)
        for _ in range(2 if truncations else 1):
            targets = _valid_rows(batches, [_targets(eb, gamma, critic, bootstrap=truncations) for eb in batches])
            _regress(critic, obs, targets, epochs, minibatch)
    critic.eval()
    return critic


@torch.no_grad()
def _targets(eb: EpisodeBatch, gamma: float, critic: FittedCritic, bootstrap: bool) -> torch.Tensor:
    b = eb.batch
    next_values = None
    if bootstrap:
        T, N = b.rewards.shape
        flat = critic(obs_cat([b.flat(b.obs), b.next_obs])).reshape(-1)
        values = flat[: T * N].reshape(T, N)
        next_values = torch.cat([values[1:], flat[T * N:].unsqueeze(0)])
    return returns.reward_to_go(rewards=b.rewards, terminated=b.terminated, truncated=b.truncated, gamma=gamma,
                                next_values=next_values)


def _regress(critic: FittedCritic, obs: Observation, targets: torch.Tensor, epochs: int, minibatch: int) -> None:
    critic.mean = targets.mean()
    critic.std = targets.std().clamp_min(1e-6) if len(targets) > 1 else torch.ones(())
    scaled = (targets - critic.mean) / critic.std
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
    critic.train()
    for _ in range(epochs):
        for index in torch.randperm(obs_rows(obs)).split(minibatch):
            loss = losses.value_loss(critic.standardised(obs_index(obs, index)), scaled[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@torch.no_grad()
def explained_variance(critic: Critic, batches: Sequence[EpisodeBatch], gamma: float) -> float:
    """How much of the variance of the discounted reward-to-go of ``batches`` V explains (1: all;
    0: no better than a constant), on their episodes, which the critic was not fitted on."""
    values, targets = [], []
    for eb in batches:
        b = eb.batch
        values.append(critic.value(b.flat(b.obs))[b.flat(b.valid)])
        targets.append(returns.reward_to_go(rewards=b.rewards, terminated=b.terminated, truncated=b.truncated,
                                            gamma=gamma)[b.valid])
    return losses.explained_variance(torch.cat(values), torch.cat(targets))
