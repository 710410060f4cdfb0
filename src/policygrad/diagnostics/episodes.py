"""Batches of whole episodes at a fixed policy, and where each episode lies in a batch's rows.

:func:`policygrad.algos.rollout.collect_episodes` plays a fixed number of whole episodes spread over N
copies into time-major ``(T, N)`` tensors; here every valid row also gets the index of its episode and
its step within it, which the estimators (discounting by gamma^t, leave-one-out baselines) and the
per-episode gradients need. Each batch is an independent draw: its copies reset from seeds of its own
and its actions are sampled from a generator of its own (``numpy.random.SeedSequence`` keyed by the
purpose and the batch), so batches never share an episode and the same seed gives the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from policygrad.algos.rollout import Batch, collect_episodes
from policygrad.core.envs import make_vec_env
from policygrad.core.networks import PolicyNetwork
from policygrad.core.runtime import seeded_sampling

MAX_ENVS = 8  # copies stepped together; more only adds idle steps for the copies that finish first


@dataclass
class EpisodeBatch:
    """One batch of whole episodes.

    ========= ========== ===================================================================
    batch     (T, N)     the collected steps (:class:`policygrad.algos.rollout.Batch`)
    episode   (T, N)     index of the row's episode in 0 .. episodes-1, -1 outside every episode
                         (autoreset steps, steps past a copy's quota)
    step      (T, N)     the row's step within its episode (0 at the first)
    returns   (episodes) each episode's undiscounted return, as the environment paid it
    lengths   (episodes) each episode's number of steps
    ========= ========== ===================================================================
    """

    batch: Batch
    episode: torch.Tensor
    step: torch.Tensor
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def episodes(self) -> int:
        return len(self.returns)


def index_episodes(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``episode`` and ``step`` of every row of a batch of whole episodes (see :class:`EpisodeBatch`).

    A copy plays its episodes one after the other; an episode starts at the first valid row after
    the previous one ended (the autoreset row between them is invalid) and ends at its terminated or
    truncated row. Episodes are numbered copy by copy, in order.
    """
    valid = batch.valid.numpy(force=True)
    ended = (batch.terminated | batch.truncated).numpy(force=True) & valid
    T, N = valid.shape
    local = np.full((T, N), -1, dtype=np.int64)
    step = np.zeros((T, N), dtype=np.int64)
    count = np.zeros(N, dtype=np.int64)  # episodes each copy has finished so far
    running = np.zeros(N, dtype=np.int64)  # steps into the current episode
    for t in range(T):
        v = valid[t]
        local[t, v] = count[v]
        step[t, v] = running[v]
        running = np.where(v, running + 1, running)
        running[ended[t]] = 0
        count += ended[t]
    offsets = np.concatenate([[0], np.cumsum(count)[:-1]])
    episode = np.where(local >= 0, local + offsets[None, :], -1)
    return torch.from_numpy(episode), torch.from_numpy(step)


def batch_seeds(seed: int, purpose: int, index: int) -> tuple[int, int]:
    """The reset seed and the action-sampling seed of batch ``index`` drawn for ``purpose``: streams
    of their own for every (seed, purpose, batch)."""
    reset, sampling = np.random.SeedSequence([seed, purpose, index]).generate_state(2)
    return int(reset % 2**31), int(sampling % 2**31)


@torch.no_grad()
def collect_batches(network: PolicyNetwork, env_id: str, batches: int, episodes: int, seed: int,
                    purpose: int = 0) -> list[EpisodeBatch]:
    """``batches`` independent batches of ``episodes`` whole episodes of ``env_id``, actions sampled
    from ``network`` (its normalization statistics frozen, the caller's random state untouched)."""
    envs = make_vec_env(env_id, min(episodes, MAX_ENVS))
    was_training = network.training
    network.eval()
    out = []
    try:
        for index in range(batches):
            reset_seed, sampling_seed = batch_seeds(seed, purpose, index)
            with seeded_sampling(sampling_seed):
                batch, finished, _ = collect_episodes(envs, network, episodes, seed=reset_seed)
            if batch is None:  # collect_episodes stores the batch by default
                raise RuntimeError("collect_episodes returned no batch")
            episode, step = index_episodes(batch)
            lengths = np.bincount(episode[episode >= 0].numpy(), minlength=episodes)
            # finished episodes come in the order they ended; their returns, ordered as index_episodes numbers them
            order = sorted(range(len(finished)), key=lambda i: (finished[i].env_index, i))
            returns = np.array([finished[i].ret for i in order], dtype=np.float64)
            out.append(EpisodeBatch(batch, episode, step, returns, lengths))
    finally:
        envs.close()
        network.train(was_training)
    return out
