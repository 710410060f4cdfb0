"""Experience for recurrent policies: collected with the hidden state, learnt from as sequences.

A recurrent network (:mod:`policygrad.core.recurrent`) acts with a state that depends on everything
its episode showed before. Collection stores, per step, the state the policy acted with (before
that step's reset) and whether the step's observation starts an episode; an update replays the
steps in order from the stored state at a sequence's first step, so it computes the log-probabilities
and values of the very policy that acted, and gradients flow back through time within the sequence.

How sequences are cut (:class:`SequenceBatch`). With ``bptt_length`` 0 a sequence is one
environment's whole rollout, and PPO's minibatches are sets of environments (CleanRL's
``ppo_atari_lstm``): every sequence keeps its true start state, no padding, no masks beyond the
autoreset steps every loss already drops; ``num_minibatches`` must divide ``num_envs``. With
``bptt_length`` L each rollout is cut into ``num_steps / L`` chunks (L must divide ``num_steps``),
each starting from the state stored at its first step: still exact (the states are the ones the
policy had), gradients are truncated at chunk starts, and a rollout of few environments (Pendulum's 4
x 1024 steps) still gives many minibatches. SB3-contrib's ``RecurrentPPO`` cuts at episode starts
and pads; cutting at fixed steps keeps every minibatch one rectangular ``(L, M)`` block, and an
episode start inside a chunk is a reset of the state (``starts``), not a cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from policygrad.algos.rollout import Batch, FixedHorizonCollector
from policygrad.core import losses
from policygrad.core.config import reject_value
from policygrad.core.distributions import ActionDistribution
from policygrad.core.envs import VecEnv
from policygrad.core.networks import PolicyNetwork
from policygrad.core.recurrent import RecurrentActorCritic
from policygrad.core.structured import Observation, assign_obs, obs_map


@dataclass
class RecurrentBatch(Batch):
    """A :class:`~policygrad.algos.rollout.Batch` with the recurrent state it was collected with.

    ================== ============ =========================================================
    states             (T, N, S)    state before step t (before its reset), S = state_size
    episode_starts     (T, N)       the observation of step t starts an episode
    next_state         (N, S)       state after the last step (where the next rollout goes on)
    next_start         (N,)         next_obs starts an episode
    ================== ============ =========================================================
    """

    states: torch.Tensor | None = None
    episode_starts: torch.Tensor | None = None
    next_state: torch.Tensor | None = None
    next_start: torch.Tensor | None = None

    def next_value(self, network: PolicyNetwork) -> torch.Tensor:
        """V(next_obs) ``(N,)`` with the state after the last step: a truncated episode's final
        observation is valued with the state it would have had (not reset)."""
        if not isinstance(network, RecurrentActorCritic) or self.next_state is None or self.next_start is None:
            raise RuntimeError("a recurrent batch needs the recurrent network that collected it")
        with torch.no_grad():
            _, value, _ = network.step(self.next_obs, self.next_state, self.next_start)
        if value is None:
            raise RuntimeError("the recurrent network returned no value")
        return value


class RecurrentCollector(FixedHorizonCollector):
    """:class:`~policygrad.algos.rollout.FixedHorizonCollector` for a recurrent network: the same
    buffers, plus the state and the episode-start flag of every step; the state carries over from one
    collection to the next (``next_state``, ``next_start``: checkpoints save them). One torch step of
    the network per environment step (the NumPy and fused acting paths are for feed-forward MLPs)."""

    network: RecurrentActorCritic

    def __init__(self, envs: VecEnv, network: RecurrentActorCritic, num_steps: int, seed: int) -> None:
        super().__init__(envs, network, num_steps, seed)
        T, N = num_steps, envs.num_envs
        self.state_buf = torch.zeros((T, N, network.state_size), device=envs.device)
        self.start_buf = torch.zeros((T, N), dtype=torch.bool, device=envs.device)
        self.reset_state()

    def reset_state(self) -> None:
        """Zero state, every copy starting an episode (after ``envs.reset``)."""
        N = self.envs.num_envs
        self.next_state = self.network.initial_state(N, self.envs.device)
        self.next_start = torch.ones(N, dtype=torch.bool, device=self.envs.device)

    def carried(self) -> dict[str, torch.Tensor]:
        """What the next collection starts from beyond the observation (for checkpoints)."""
        return {"collector.next_state": self.next_state, "collector.next_start": self.next_start}

    @torch.no_grad()
    def collect(self) -> RecurrentBatch:
        network, envs = self.network, self.envs
        device = envs.device
        assign_obs(self.obs_buf, 0, self.next_obs)
        state, starts = self.next_state, self.next_start
        last = self.num_steps - 1
        for t, obs in enumerate(self._obs_rows):
            network.reset_exploration(envs.num_envs, t)
            network.observe(obs)
            self.state_buf[t], self.start_buf[t] = state, starts
            dist, value, state = network.step(obs, state, starts)
            if value is None:
                raise RuntimeError("the recurrent network returned no value although it has a value head")
            actions, log_probs = dist.sample_with_log_prob()
            self.act_buf[t], self.logp_buf[t], self.value_buf[t] = actions, log_probs, value
            next_obs, reward, terminated, truncated, valid = envs.step_arrays(network.to_env(actions))
            next_t = envs.obs_tensor(next_obs)  # (a dict of parts and the mask for such envs)
            if t < last:
                assign_obs(self.obs_buf, t + 1, next_t)
            else:  # a copy: the env may reuse its array
                self.next_obs = obs_map(lambda v: v.clone(), next_t)
            valid_t = torch.as_tensor(valid, device=device)
            ended = torch.as_tensor(terminated | truncated, device=device)
            self.rew_buf[t] = network.learning_rewards(torch.as_tensor(reward, dtype=torch.float32, device=device),
                                                       ended, valid_t)
            self.term_buf[t] = torch.as_tensor(terminated, device=device)
            self.trunc_buf[t] = torch.as_tensor(truncated, device=device)
            self.valid_buf[t] = valid_t
            # An autoreset step (not valid) returned a new episode's first observation: it starts.
            starts = ~valid_t
        self.next_state, self.next_start = state, starts
        return RecurrentBatch(
            obs=self.obs_buf, actions=self.act_buf, rewards=self.rew_buf, terminated=self.term_buf,
            truncated=self.trunc_buf, valid=self.valid_buf, next_obs=self.next_obs,
            log_probs=self.logp_buf, values=self.value_buf, states=self.state_buf,
            episode_starts=self.start_buf, next_state=state, next_start=starts,
        )


def make_collector(envs: VecEnv, network: PolicyNetwork, num_steps: int, seed: int) -> FixedHorizonCollector:
    """The fixed-horizon collector for ``network``: :class:`RecurrentCollector` for a recurrent one."""
    if isinstance(network, RecurrentActorCritic):
        return RecurrentCollector(envs, network, num_steps, seed)
    return FixedHorizonCollector(envs, network, num_steps, seed)


def _as_sequences(x: torch.Tensor, chunks: int) -> torch.Tensor:
    """``(T, N, *rest)`` -> ``(T / chunks, chunks * N, *rest)``: column ``c * N + n`` is chunk c of env n."""
    if chunks == 1:
        return x
    steps, envs = x.shape[:2]
    length = steps // chunks
    return x.reshape(chunks, length, envs, *x.shape[2:]).transpose(0, 1).reshape(length, chunks * envs, *x.shape[2:])


@dataclass
class SequenceBatch:
    """The real transitions of a recurrent batch, with the sequences to replay them from.

    =========== ============ ========================================================
    actions     (B, *act)    actions taken, real transitions only, time-major order
    log_probs   (B,)         log pi_old(a|s) at collection
    values      (B,)         V_old(s) at collection
    advantages  (B,)         A_t
    targets     (B,)         value targets
    obs         (L, M, *obs) M sequences of L steps (autoreset steps included)
    states      (M, S)       the stored state at each sequence's first step
    starts      (L, M)       episode starts (the state is reset there)
    valid       (L, M)       real transitions (the B rows above, in time-major order)
    rows        (L, M)       index of each real transition among the B rows (-1: none)
    =========== ============ ========================================================

    The flat fields are those of :class:`~policygrad.algos.on_policy.FlatBatch`, so the losses, the
    reward normalization and the diagnostics read both alike; only :meth:`dist_and_value` differs.
    """

    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    targets: torch.Tensor
    obs: Observation
    states: torch.Tensor
    starts: torch.Tensor
    valid: torch.Tensor
    rows: torch.Tensor

    @classmethod
    def from_batch(cls, batch: RecurrentBatch, advantages: torch.Tensor, targets: torch.Tensor,
                   bptt_length: int = 0) -> SequenceBatch:
        """Sequences of ``bptt_length`` steps (0: the whole rollout) from a collected batch."""
        if batch.states is None or batch.episode_starts is None or batch.log_probs is None or batch.values is None:
            raise RuntimeError("a sequence batch needs a recurrent fixed-horizon batch")
        steps = batch.num_steps
        chunks = steps // bptt_length if bptt_length else 1
        if chunks * (steps // chunks) != steps:
            raise RuntimeError(f"bptt_length={bptt_length} does not divide num_steps={steps}")
        length = steps // chunks
        valid = _as_sequences(batch.valid, chunks)
        real = valid.reshape(-1).nonzero().squeeze(1)
        rows = torch.full(valid.shape, -1, dtype=torch.long, device=valid.device)
        rows.view(-1)[real] = torch.arange(real.numel(), device=valid.device)
        states = batch.states.reshape(chunks, length, *batch.states.shape[1:])[:, 0]
        def flat(x: torch.Tensor) -> torch.Tensor:
            return _as_sequences(x, chunks).reshape(-1, *x.shape[2:]).index_select(0, real)

        return cls(actions=flat(batch.actions), log_probs=flat(batch.log_probs), values=flat(batch.values),
                   advantages=flat(advantages), targets=flat(targets),
                   obs=obs_map(lambda v: _as_sequences(v, chunks), batch.obs),
                   states=states.reshape(-1, states.shape[-1]), starts=_as_sequences(batch.episode_starts, chunks),
                   valid=valid, rows=rows)

    def __len__(self) -> int:
        return self.log_probs.shape[0]

    @property
    def num_sequences(self) -> int:
        return self.valid.shape[1]

    def columns(self, index: torch.Tensor) -> SequenceBatch:
        """The sequences ``index`` (M' of them) with their real transitions."""
        rows = self.rows[:, index]
        real = rows[rows >= 0]
        sub_valid = self.valid[:, index]
        renumbered = torch.full(rows.shape, -1, dtype=torch.long, device=rows.device)
        renumbered[sub_valid] = torch.arange(real.numel(), device=rows.device)
        return SequenceBatch(actions=self.actions[real], log_probs=self.log_probs[real], values=self.values[real],
                             advantages=self.advantages[real], targets=self.targets[real],
                             obs=obs_map(lambda v: v[:, index], self.obs),
                             states=self.states[index], starts=self.starts[:, index], valid=sub_valid, rows=renumbered)

    def minibatches(self, num_minibatches: int) -> list[SequenceBatch]:
        """The sequences shuffled (torch's random state, like the feed-forward shuffle) and dealt into
        ``num_minibatches`` equal sets; one set is the batch itself, unshuffled."""
        if num_minibatches == 1:
            return [self]
        order = torch.randperm(self.num_sequences, device=self.valid.device)
        size = self.num_sequences // num_minibatches
        return [self.columns(order[i * size:(i + 1) * size]) for i in range(num_minibatches)]

    def dist_and_value(self, network: PolicyNetwork) -> tuple[ActionDistribution, torch.Tensor]:
        """The distribution and V(s) of the B real transitions, replayed through the sequences."""
        if not isinstance(network, RecurrentActorCritic):
            raise RuntimeError("a sequence batch is replayed by a recurrent network")
        return network.replay(self.obs, self.states, self.starts, self.valid)

    @torch.no_grad()
    def explained_variance(self) -> float:
        return losses.explained_variance(self.values, self.targets)


def sequence_data(batch: Batch, advantages: torch.Tensor, targets: torch.Tensor, bptt_length: int) -> SequenceBatch:
    """:meth:`SequenceBatch.from_batch` for a batch a :class:`RecurrentCollector` collected."""
    if not isinstance(batch, RecurrentBatch):
        raise RuntimeError("sequences need a batch collected with the recurrent state")
    return SequenceBatch.from_batch(batch, advantages, targets, bptt_length)



def check_sequence_fields(cfg: Any) -> None:
    """UserInputError, one line, where a fixed-horizon config's recurrent fields do not fit together:
    ``bptt_length`` must divide ``num_steps`` (and needs a recurrent network), ``num_minibatches`` must
    divide the number of sequences (``num_envs`` with whole rollouts), and the gradient noise scale,
    which splits a batch into single transitions, cannot measure sequences."""
    recurrent = getattr(cfg, "recurrent", "none") != "none"
    bptt = getattr(cfg, "bptt_length", 0)
    if not isinstance(bptt, int) or isinstance(bptt, bool) or bptt < 0:
        reject_value("bptt_length", bptt, "an integer >= 0 (0: each environment's whole rollout)")
    if bptt and not recurrent:
        reject_value("bptt_length", bptt, "0 without a recurrent network (set recurrent=lstm | gru to use it)")
    if not recurrent:
        return
    steps, envs = cfg.num_steps, cfg.num_envs
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (steps, envs)):
        return  # their own checks name them
    if bptt and steps % bptt:
        reject_value("bptt_length", bptt, f"a divisor of num_steps={steps} (or 0: the whole rollout)")
    sequences = envs * (steps // bptt if bptt else 1)
    minibatches = getattr(cfg, "num_minibatches", 1)
    if isinstance(minibatches, int) and not isinstance(minibatches, bool) and minibatches > 0 \
            and sequences % minibatches:
        what = (f"num_envs={envs}" if not bptt
                else f"the {sequences} sequences (num_envs * num_steps / bptt_length)")
        reject_value("num_minibatches", minibatches, f"a divisor of {what} with recurrent={cfg.recurrent!r}: a "
                     "minibatch is a set of whole sequences")
    if getattr(cfg, "grad_noise_scale", False):
        reject_value("grad_noise_scale", True, "False with recurrent: the gradient noise scale splits a batch "
                     "into single transitions, which a recurrent network cannot take out of their sequences")
