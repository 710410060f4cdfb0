"""Memory: a recurrent core (LSTM or GRU) between the encoder and the heads, and its state.

    observation -> encoder (MLP or CNN) -> recurrent core -> policy head, value head

The network (:class:`RecurrentActorCritic`) is the built-in :class:`~policygrad.core.networks.ActorCritic`
with a core after each encoder. Its hidden state is data, like an observation:

- one flat tensor per batch row, ``(B, state_size)``: every layer's h (and, for the LSTM, c) of the
  policy's core, then of the value's; zeros at the start (:meth:`RecurrentActorCritic.initial_state`);
- reset at every episode start: each step takes an ``episode_start`` flag per row, and the state is
  multiplied by ``1 - episode_start`` before the observation enters the core (an episode ended by
  termination or truncation alike); the collectors store the state each step acted with, before the
  reset, so an update replays every sequence from the state the policy had (``algos/sequences.py``);
- under NEXT_STEP autoreset (``core/envs.py``) the observation after an episode's last step is its
  final observation, which the next step (the autoreset step) reads with the state carried on: so the
  value that bootstraps a truncated episode is computed with the state the final observation would
  have had. The observation the autoreset step returns is the new episode's first: that one starts.

``hidden_sizes`` may be empty (the core reads the observation) and ``post_core_sizes`` puts an MLP
between the core and each head: observation -> LSTM -> MLP -> heads is SB3-contrib's ``RecurrentPPO``
layout (its ``net_arch`` after ``lstm_hidden_size``).

Actor and critic have their own core unless ``shared_trunk`` (then one encoder and one core feed both
heads). Separate is the default, as it is for the MLP and in SB3-contrib's ``RecurrentPPO``: the value
loss then cannot reshape what the policy remembers; sharing halves the core's cost (CleanRL's
``ppo_atari_lstm`` shares one).

A sequence is run through ``nn.LSTM``/``nn.GRU`` (their C++ loop over time) in segments cut where
some row's episode starts: between cuts no state needs resetting, and each cut costs one more call.
The speed paths of ``fast/`` take feed-forward networks only; this one takes the plain path
(:attr:`RecurrentActorCritic.mlp_encoder` is False).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import nn

from policygrad.core.distributions import ActionDistribution
from policygrad.core.encoders import run_mlp
from policygrad.core.errors import UserInputError
from policygrad.core.masks import split_mask
from policygrad.core.networks import ActorCritic, build_agent_kwargs, init_mlp, mlp
from policygrad.core.structured import obs_map

RECURRENT_KINDS = ("none", "lstm", "gru")


class RecurrentCore(nn.Module):
    """An LSTM or GRU over time-major features, its state flat per row.

    ======== ============ ===========================================================
    x        (L, B, F)    features of L consecutive steps of B rows
    state    (B, S)       the state before step 0 (S = state_size), not yet reset
    starts   (L, B)       True where that step's observation starts an episode
    returns  (L, B, H)    the core's output (H = size) and the state after step L-1
    ======== ============ ===========================================================
    """

    def __init__(self, kind: str, in_features: int, size: int, layers: int) -> None:
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise UserInputError(f"recurrent={kind!r} is invalid: expected lstm | gru")
        self.kind, self.size, self.layers = kind, size, layers
        self.parts = 2 if kind == "lstm" else 1  # h and c, or h
        self.rnn: nn.LSTM | nn.GRU = (nn.LSTM if kind == "lstm" else nn.GRU)(in_features, size, layers)
        self.state_size = self.parts * layers * size

    def init(self, scheme: str) -> None:
        """Orthogonal weights (gain 1) and zero biases, as CleanRL's ``ppo_atari_lstm``; torch's own
        uniform init for ``torch-default`` (and for the other schemes, which are for ReLU/tanh layers)."""
        if scheme != "orthogonal":
            return
        for name, param in self.rnn.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param, 1.0)
            else:
                nn.init.zeros_(param)

    def _unpack(self, state: torch.Tensor) -> Any:
        rows = state.shape[0]
        parts = state.reshape(rows, self.parts, self.layers, self.size).permute(1, 2, 0, 3).contiguous()
        return (parts[0], parts[1]) if self.kind == "lstm" else parts[0]

    def _pack(self, hx: Any) -> torch.Tensor:
        parts = torch.stack(hx) if self.kind == "lstm" else hx.unsqueeze(0)  # (parts, layers, B, H)
        return parts.permute(2, 0, 1, 3).reshape(parts.shape[2], self.state_size)

    def forward(self, x: torch.Tensor, state: torch.Tensor,
                starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The outputs and the state after the last step; the state is None when an episode starts
        inside the sequence (a replay, which needs only the outputs)."""
        keep = (~starts[0]).to(x.dtype).unsqueeze(-1)
        if x.shape[0] == 1 or not bool(starts[1:].any()):  # no reset inside: one call from the first state
            out, hx = self.rnn(x, self._unpack(state * keep))
            return out, self._pack(hx)
        return self._fragments(x, state * keep, starts), None

    def _fragments(self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """The outputs of L steps of B rows whose episodes start inside: each row's steps are cut at
        its episode starts into fragments, which run side by side in one call (padded at their ends,
        which a causal core never reads back), the first fragment of each row from its state, the
        others from zeros. One call instead of one per distinct start time: a 32-step replay of 8
        CartPole rows costs about a quarter (benchmarks/results/recurrent_speed.md)."""
        steps, rows = starts.shape
        total = steps * rows
        bound = starts.t().contiguous()  # (B, L): fragments are enumerated row by row
        bound[:, 0] = True
        flat_bound = bound.reshape(-1)
        fragment = flat_bound.long().cumsum(0) - 1  # fragment of each (row, step)
        begin = flat_bound.nonzero().squeeze(1)  # where each fragment begins, in (row, step) order
        k = torch.arange(total, device=x.device)
        position = k - begin[fragment]  # step within its fragment
        count, length = int(fragment[-1]) + 1, int(position.max()) + 1
        source = (k % steps) * rows + k // steps  # its (step, row) index in the time-major x
        index = torch.full((length, count), total, dtype=torch.long, device=x.device)  # total: a zero row
        index[position, fragment] = source
        back = torch.empty(total, dtype=torch.long, device=x.device)
        back[source] = position * count + fragment
        flat_x = torch.cat([x.reshape(total, -1), x.new_zeros(1, x.shape[-1])])
        first = (begin % steps == 0).to(x.dtype).unsqueeze(1)  # fragments that begin at step 0 take the state
        initial = state[begin // steps] * first
        out, _ = self.rnn(flat_x[index], self._unpack(initial))
        return out.reshape(length * count, -1)[back].reshape(steps, rows, -1)


class RecurrentActorCritic(ActorCritic):
    """:class:`~policygrad.core.networks.ActorCritic` with a recurrent core after each encoder (one,
    shared by both heads, with ``shared_trunk``); the heads read the core's ``recurrent_size`` outputs.

    Shapes: :meth:`step` ``obs`` ``(B, *obs_shape)``, ``state`` ``(B, state_size)``, ``starts``
    ``(B,)`` -> a distribution over ``(B, *action_shape)``, values ``(B,)``, the next state ``(B,
    state_size)``; :meth:`replay` the same over ``(L, B, ...)`` sequences. The stateless methods of
    :class:`~policygrad.core.networks.PolicyNetwork` (``dist``, ``value``, ``dist_and_value``) raise:
    without its state the network's answer would be silently wrong.
    """

    is_recurrent = True

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, recurrent: str = "lstm",
                 recurrent_size: int = 64, recurrent_layers: int = 1, post_core_sizes: tuple[int, ...] = (),
                 **kwargs: Any) -> None:
        head_features = post_core_sizes[-1] if post_core_sizes else recurrent_size
        super().__init__(observation_space, action_space, head_features=head_features, **kwargs)
        init, activation = kwargs.get("init", "orthogonal"), kwargs.get("activation", "tanh")
        self.recurrent = recurrent
        self.policy_core = RecurrentCore(recurrent, self.policy_body.out_features, recurrent_size, recurrent_layers)
        self.policy_core.init(init)
        self.value_core: RecurrentCore | None = None
        if self.value_head is not None and not self.shared_trunk:
            self.value_core = RecurrentCore(recurrent, self.policy_body.out_features, recurrent_size, recurrent_layers)
            self.value_core.init(init)
        self.state_size = self.policy_core.state_size + (self.value_core.state_size if self.value_core else 0)
        # Layers after the core (SB3-contrib's order: observation -> LSTM -> MLP -> heads), each head its
        # own unless the value reads the policy's core; empty (the default): the heads read the core.
        self.policy_post = mlp(recurrent_size, tuple(post_core_sizes), activation)
        init_mlp(self.policy_post, init)
        self.value_post: nn.Sequential | None = None
        if self.value_core is not None:
            self.value_post = mlp(recurrent_size, tuple(post_core_sizes), activation)
            init_mlp(self.value_post, init)

    @property
    def mlp_encoder(self) -> bool:
        """False: the speed paths of ``fast/`` compute feed-forward MLPs only; this network takes the plain path."""
        return False

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The state of ``batch`` rows before their first step: zeros ``(batch, state_size)``."""
        device = device if device is not None else next(self.parameters()).device
        return torch.zeros(batch, self.state_size, device=device)

    def unroll(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor,
               with_value: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The heads' features over ``(L, B)`` steps: policy ``(L, B, H)``, value ``(L, B, H)`` (None
        without ``with_value`` or a value head) and the state after the last step ``(B, state_size)``
        (None when an episode starts after the first step: see :meth:`RecurrentCore.forward`)."""
        steps, rows = starts.shape
        x = self.preprocess(obs_map(lambda v: v.reshape(steps * rows, *v.shape[2:]), obs))
        split = self.policy_core.state_size
        policy_in = self.encode(self.policy_body, x).reshape(steps, rows, -1)
        policy, policy_state = self.policy_core(policy_in, state[:, :split], starts)
        policy = run_mlp(self.policy_post, policy)
        if self.value_core is None:  # shared (or no value head): the value reads the policy's core
            return policy, (policy if with_value and self.value_head is not None else None), policy_state
        if not with_value:  # the value's state still moves on: the next steps need it
            with torch.no_grad():
                _, value_state = self._value_core(x, state[:, split:], starts, steps, rows)
            return policy, None, _joined(policy_state, value_state)
        value, value_state = self._value_core(x, state[:, split:], starts, steps, rows)
        if self.value_post is not None:
            value = run_mlp(self.value_post, value)
        return policy, value, _joined(policy_state, value_state)

    def _value_core(self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor, steps: int,
                    rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.value_core is None:
            raise RuntimeError("this network has no separate value core")
        body = self.policy_body if self.value_body is None else self.value_body
        return self.value_core(self.encode(body, x).reshape(steps, rows, -1), state, starts)

    def _value(self, features: torch.Tensor) -> torch.Tensor:
        if self.value_head is None:
            raise RuntimeError("this network has no value head (with_value=False)")
        return self.value_output(nn.functional.linear(features, self.value_head.weight,
                                                      self.value_head.bias).squeeze(-1))

    def step(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor,
             with_value: bool = True) -> tuple[ActionDistribution, torch.Tensor | None, torch.Tensor]:
        """One step of ``B`` rows: the action distribution, V(s) ``(B,)`` (None without ``with_value``)
        and the state after this step. ``state`` is the state before it, ``starts`` ``(B,)`` says which
        rows begin an episode here (their state is zeroed first)."""
        obs, mask = split_mask(obs)  # an action mask (B, n) restricts the distribution (core/masks.py)
        policy, value, after = self.unroll(obs_map(lambda v: v.unsqueeze(0), obs), state, starts.unsqueeze(0),
                                           with_value)
        if after is None:  # (one step always has it)
            raise RuntimeError("the recurrent core returned no state after one step")
        dist = self.policy_distribution(policy[0], mask)
        return dist, (self._value(value[0]) if value is not None else None), after

    def replay(self, obs: torch.Tensor, state: torch.Tensor, starts: torch.Tensor,
               rows: torch.Tensor | None = None) -> tuple[ActionDistribution, torch.Tensor]:
        """The distribution and values of ``(L, B)`` steps replayed from ``state`` ``(B, state_size)``
        with the resets ``starts`` ``(L, B)``, for the steps ``rows`` ``(L, B)`` marks (all if None),
        flattened time-major: what an update computes its losses on."""
        obs, mask = split_mask(obs)  # the masks (L, B, n) the policy acted under, stored with the rollout
        policy, value, _ = self.unroll(obs, state, starts)
        policy, value = policy.reshape(-1, policy.shape[-1]), value.reshape(-1, value.shape[-1])  # type: ignore[union-attr]
        if mask is not None:
            mask = mask.reshape(-1, mask.shape[-1])
        if rows is not None and not bool(rows.all()):
            index = rows.reshape(-1).nonzero().squeeze(1)
            policy, value = policy.index_select(0, index), value.index_select(0, index)
            mask = mask.index_select(0, index) if mask is not None else None
        return self.policy_distribution(policy, mask), self._value(value)

    def _stateless(self) -> RuntimeError:
        return RuntimeError("a recurrent network needs its state: call step(obs, state, starts) or replay(...), "
                            "not dist/value/dist_and_value")

    def dist(self, obs: torch.Tensor) -> ActionDistribution:
        raise self._stateless()

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        raise self._stateless()

    def dist_and_value(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        raise self._stateless()


def _joined(policy: torch.Tensor | None, value: torch.Tensor | None) -> torch.Tensor | None:
    return None if policy is None or value is None else torch.cat([policy, value], dim=1)


def check_recurrent_fields(cfg: Any) -> None:
    """UserInputError for recurrent values the network cannot take: the user's own module has no core
    to add (it would have to carry its own state)."""
    if getattr(cfg, "recurrent", "none") != "none" and cfg.network:
        raise UserInputError(f"recurrent={cfg.recurrent!r} applies to the built-in network, not to network="
                             f"{cfg.network!r}: use recurrent='none' with your own module")


def build_recurrent_agent(cfg: Any, observation_space: gym.Space, action_space: gym.Space,
                          with_value: bool) -> RecurrentActorCritic:
    """The recurrent network a config asks for (``recurrent`` lstm | gru)."""
    check_recurrent_fields(cfg)
    return RecurrentActorCritic(observation_space, action_space, recurrent=cfg.recurrent,
                                recurrent_size=cfg.recurrent_size, recurrent_layers=cfg.recurrent_layers,
                                post_core_sizes=tuple(cfg.post_core_sizes), **build_agent_kwargs(cfg, with_value))
