"""Collecting experience: whole episodes (REINFORCE, evaluation) or a fixed horizon (actor-critics).

Both produce a :class:`Batch` of time-major tensors. Collection runs without gradient; an update
recomputes log-probabilities and values in one batched pass, which costs far less than keeping a
graph per step and gives the same numbers because the policy has not changed in between.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from policygrad.core.distributions import action_dtype, action_shape
from policygrad.core.envs import Episode, VecEnv, make_vec_env
from policygrad.core.errors import UserInputError
from policygrad.core.networks import ActorCritic, PolicyNetwork
from policygrad.core.recurrent import RecurrentActorCritic
from policygrad.core.runtime import seeded_sampling
from policygrad.core.structured import Observation, assign_obs, is_structured, obs_map, obs_rows_view, obs_stack
from policygrad.fast.fused_acting import ActingForward, acting_forward
from policygrad.fast.numpy_acting import NumpyActor, numpy_actor_class, sampling_generator


@dataclass
class Batch:
    """Experience of N environments over T steps.

    ========== ================ ===================================================================
    obs        (T, N, *obs)     observation each action was taken on (Dict/Tuple spaces, action
                                masks: a dict of such tensors by path, core/structured.py)
    actions    (T, N, *act)     actions as the policy produced them (never clipped)
    rewards    (T, N)           reward of each step
    terminated (T, N)           episode reached a terminal state at this step
    truncated  (T, N)           episode was cut at this step (time limit)
    valid      (T, N)           a real transition (False: an autoreset step, or past an env's quota)
    next_obs   (N, *obs)        observation after the last step (to bootstrap the horizon)
    log_probs  (T, N)           log pi_old(a|s) at collection (fixed-horizon collection only)
    values     (T, N)           V(s) at collection (fixed-horizon collection, with a critic)
    ========== ================ ===================================================================
    """

    obs: Observation
    actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    valid: torch.Tensor
    next_obs: Observation
    log_probs: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def num_steps(self) -> int:
        return self.rewards.shape[0]

    def flat(self, x: Any) -> Any:
        """``(T, N, *rest)`` -> ``(T * N, *rest)`` (a view, no copy); part by part for observation dicts."""
        return obs_map(lambda v: v.reshape(-1, *v.shape[2:]), x)

    def next_value(self, network: PolicyNetwork) -> torch.Tensor:
        """V(next_obs) ``(N,)``, no gradient: what the horizon bootstraps from (a recurrent batch values
        it with the state it carries: algos/sequences.py)."""
        with torch.no_grad():
            return network.value(self.next_obs)


def acting(envs: VecEnv, network: PolicyNetwork, with_value: bool = True, expected_rows: int = 0) -> ActingForward:
    """The acting pass for ``envs``' observations: :func:`acting_forward` (its fused and NumPy speed
    paths take plain arrays), or the network's own pass for observation dicts (parts, masks)."""
    if envs.structured:
        if with_value and network.has_value:
            return network.dist_and_value
        return lambda obs: (network.dist(obs), None)
    return acting_forward(network, with_value, expected_rows)


def split_quota(episodes: int, num_envs: int) -> list[int]:
    """Spread ``episodes`` over ``num_envs`` copies as evenly as possible (first copies take the rest)."""
    return [episodes // num_envs + (1 if i < episodes % num_envs else 0) for i in range(num_envs)]


@torch.no_grad()
def collect_episodes(
    envs: VecEnv,
    network: PolicyNetwork,
    episodes: int,
    deterministic: bool = False,
    seed: int | None = None,
    store: bool = True,
    max_steps: int = 1_000_000,
    training: bool = False,
) -> tuple[Batch | None, list[Episode], int]:
    """Run exactly ``episodes`` whole episodes, spread over the copies, from a fresh reset.

    Each copy plays its share; once a copy has finished its share, its further steps are marked
    invalid. Fixing the shares up front, rather than stopping at the first ``episodes`` to finish,
    avoids favouring short episodes (which finish first) in the batch.

    ``training`` feeds observations and rewards to the network's normalization statistics (evaluation
    leaves them frozen). Returns the batch (None unless ``store``), the finished episodes, and the
    number of environment steps taken (every copy, every step: what the collection cost).
    The per-copy bookkeeping is NumPy on the host, where it costs a microsecond a step.
    """
    quota = np.asarray(split_quota(episodes, envs.num_envs))
    done_count = np.zeros_like(quota)
    obs = envs.reset(seed=seed)
    envs.pop_episodes()
    forward = acting(envs, network, with_value=False, expected_rows=32 * envs.num_envs)  # episodes run for a while
    # a recurrent network: a state per copy, zeroed where an episode starts (core/recurrent.py)
    recurrent = network if isinstance(network, RecurrentActorCritic) else None
    if recurrent is not None:
        state = recurrent.initial_state(envs.num_envs, envs.device)
        starts = torch.ones(envs.num_envs, dtype=torch.bool, device=envs.device)
    scale_rewards = training and network.reward_scaler is not None
    keys = ("obs", "actions", "rewards", "terminated", "truncated", "valid")
    columns: dict[str, list] = {k: [] for k in keys}
    finished: list[Episode] = []
    steps = 0
    reward: np.ndarray | torch.Tensor  # the env's rewards, as a tensor once scaled
    while (done_count < quota).any():
        if steps >= max_steps * envs.num_envs:
            raise RuntimeError(f"episodes did not end within {max_steps} steps: does the env have a time limit?")
        if training:
            network.observe(obs)
        if not deterministic:
            network.reset_exploration(envs.num_envs, steps // envs.num_envs)
        if recurrent is not None:
            dist, _, state = recurrent.step(obs, state, starts, with_value=False)
        else:
            dist, _ = forward(obs)
        actions = dist.mode() if deterministic else dist.sample()
        next_obs, reward, terminated, truncated, valid = envs.step_arrays(network.to_env(actions))
        if recurrent is not None:  # an autoreset step (not valid) returned a new episode's first observation
            starts = torch.as_tensor(~valid, device=envs.device)
        steps += envs.num_envs
        counted = valid & (done_count < quota)
        ended = terminated | truncated
        if scale_rewards:
            reward = network.learning_rewards(torch.as_tensor(reward, dtype=torch.float32, device=envs.device),
                                            *(torch.as_tensor(x, device=envs.device) for x in (ended, counted)))
        for episode in envs.pop_episodes():
            if done_count[episode.env_index] < quota[episode.env_index]:
                finished.append(episode)
        done_count += counted & ended
        if store:
            for key, value in zip(keys, (obs, actions, reward, terminated, truncated, counted)):
                columns[key].append(value)
        obs = envs.obs_tensor(next_obs)
    if not store:
        return None, finished, steps
    stacked = {k: obs_stack(v) if isinstance(v[0], (torch.Tensor, dict)) else torch.from_numpy(np.stack(v))
               for k, v in columns.items()}
    stacked["rewards"] = stacked["rewards"].to(envs.device, torch.float32)
    for key in ("terminated", "truncated", "valid"):
        stacked[key] = stacked[key].to(envs.device)
    return Batch(next_obs=obs, **stacked), finished, steps


def evaluation_episodes(network: PolicyNetwork, env_id: str, episodes: int, deterministic: bool = True,
                        seed: int = 10_000, num_envs: int | None = None,
                        device: torch.device | str | None = None) -> list[Episode]:
    """Play ``episodes`` whole episodes of ``env_id`` with ``network`` on fresh copies of the
    environment (``min(episodes, num_envs or 8)`` of them, copy i reset from ``seed + i``), its
    normalization statistics frozen; returns them. The evaluation of :func:`policygrad.evaluate` and
    of the trainer's periodic evaluations (``eval_every``).

    ``deterministic`` acts with the distribution's mode; otherwise actions are sampled from generators
    seeded with ``seed`` (the caller's random state is left as it was). Nothing here draws from the
    training's random state, so evaluating between two iterations leaves the run as it would have been.
    """
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes <= 0:
        raise UserInputError(f"episodes={episodes!r} is invalid: expected an integer > 0")
    device = torch.device(device) if device is not None else next(network.parameters()).device
    envs = make_vec_env(env_id, min(episodes, num_envs or 8), device=device)
    was_training = network.training
    network.eval()
    try:
        sampling = contextlib.nullcontext() if deterministic else seeded_sampling(seed, device)
        with sampling:
            _, finished, _ = collect_episodes(envs, network, episodes, deterministic, seed=seed, store=False)
    finally:
        envs.close()
        network.train(was_training)
    return finished


class FixedHorizonCollector:
    """Collects ``num_steps`` steps of every copy into preallocated ``(T, N)`` buffers, carrying the
    last observation over to the next call so that episodes run on across batches.

    The buffers are reused: the next ``collect()`` overwrites the Batch the previous one returned.

    Per step the work is one fused policy-and-value pass (:func:`policygrad.fast.fused_acting.acting_forward`), one
    sample and one environment step; on the CPU the environment's NumPy arrays are copied straight
    into NumPy views of the buffers, and each observation is written once, into the row the policy
    then reads it from. On the CPU, networks that :mod:`policygrad.fast.numpy_acting` supports (the
    Categorical and Gaussian heads of plain MLPs) act in NumPy, sampling from ``sampling_rng``.
    """

    def __init__(self, envs: VecEnv, network: PolicyNetwork, num_steps: int, seed: int) -> None:
        self.envs, self.network, self.num_steps = envs, network, num_steps
        space = envs.single_observation_space
        T, N, device = num_steps, envs.num_envs, envs.device
        if space.shape is None and not is_structured(space):
            raise UserInputError(f"observation space {space} has no shape: a fixed-horizon buffer cannot hold it")
        if not network.has_value:  # the values are stored for the advantages of every fixed-horizon algorithm
            raise ValueError("collecting a fixed horizon needs a network with a value head")
        self.next_obs: Observation = envs.reset(seed=seed)  # (first: whether observations are dicts shows at the reset)
        # in the observation's storage dtype: uint8 images stay uint8 (a quarter of float32's memory)
        self.obs_buf: Observation = obs_map(lambda part: part.new_zeros((T, *part.shape)), self.next_obs)
        act_space = envs.single_action_space
        self.act_buf = torch.zeros((T, N, *action_shape(act_space)), dtype=action_dtype(act_space), device=device)
        self.rew_buf = torch.zeros((T, N), device=device)
        self.term_buf = torch.zeros((T, N), dtype=torch.bool, device=device)
        self.trunc_buf = torch.zeros((T, N), dtype=torch.bool, device=device)
        self.valid_buf = torch.zeros((T, N), dtype=torch.bool, device=device)
        self.logp_buf = torch.zeros((T, N), device=device)
        self.value_buf = torch.zeros((T, N), device=device)
        # NumPy views of the buffers (shared memory) on the CPU: a row copied there costs a microsecond
        # (observation dicts take the torch path: parts and masks are copied part by part)
        self._views = tuple(b.numpy() for b in (self.obs_buf, self.act_buf, self.logp_buf, self.value_buf,
                                                self.rew_buf, self.term_buf, self.trunc_buf, self.valid_buf)) \
            if device.type == "cpu" and not envs.structured else None
        self._obs_rows = obs_rows_view(self.obs_buf)  # the row views, made once
        # Acting in NumPy (where numpy_acting supports the network) samples from this Generator, not
        # torch's: part of the run's random state, so checkpoints save it (SynchronousRun.state)
        self.sampling_rng = sampling_generator(seed)
        self._actor: NumpyActor | None = None  # kept across collections: its views and buffers stay valid
        # False: networks with observation normalization act through torch (a run resumed from a
        # checkpoint of a policygrad that acted so goes on as it began: on_policy.SPEED_PATHS)
        self.normalized_in_numpy = True

    def _numpy_actor(self) -> NumpyActor | None:
        """The NumPy acting step with this moment's weights, or None where acting stays in torch."""
        network = self.network
        actor_class = numpy_actor_class(network, self.envs.num_envs) if self._views is not None else None
        if actor_class is None or not isinstance(network, ActorCritic):  # (never for another network)
            return None
        if network.obs_normalizer is not None and not self.normalized_in_numpy:
            return None
        if type(self._actor) is not actor_class or not self._actor.refresh():
            self._actor = actor_class(network, self.envs.num_envs, self.sampling_rng)
        self._actor.generator = self.sampling_rng  # a resumed run puts back a saved one
        return self._actor

    def _host_acting(self, obs_np, act_np, logp_np, value_np):
        """``act(t, obs)`` for collecting on the CPU: acts on row t (``obs`` is its tensor view),
        writes the action, log-prob and value into the buffers' row t, and returns the actions as
        the environment takes them. In NumPy where supported, else through ``acting_forward``."""
        network = self.network
        actor = self._numpy_actor()
        if actor is not None:
            stats = network.obs_normalizer.stats if network.obs_normalizer is not None else None

            def act_numpy(t: int, obs: torch.Tensor) -> np.ndarray:
                if stats is not None:  # network.observe(obs), in NumPy for one copy
                    stats.update_numpy(obs_np[t])
                return actor.act(obs_np[t], act_np[t], logp_np[t], value_np[t])
            return act_numpy
        forward = acting_forward(network, expected_rows=self.num_steps * self.envs.num_envs)

        def act_torch(t: int, obs: torch.Tensor) -> np.ndarray:
            network.observe(obs)
            dist, value = forward(obs)
            actions, log_probs = dist.sample_with_log_prob()
            if value is None:  # has_value was checked in __init__: a network that broke its contract
                raise RuntimeError("the network returned no value although it has a value head")
            act_np[t], logp_np[t], value_np[t] = actions.numpy(), log_probs.numpy(), value.numpy()
            return network.to_env(actions)
        return act_torch

    @torch.no_grad()
    def collect(self) -> Batch:
        network, envs = self.network, self.envs
        on_host = self._views is not None
        assign_obs(self.obs_buf, 0, self.next_obs)
        if self._views is not None:  # on_host
            obs_np, act_np, logp_np, value_np, rew_np, term_np, trunc_np, valid_np = self._views
            act = self._host_acting(obs_np, act_np, logp_np, value_np)
        else:
            forward = acting(envs, network, expected_rows=self.num_steps * envs.num_envs)
        scaler = network.reward_scaler  # None: the rewards are learnt as they come
        last = self.num_steps - 1
        for t, obs in enumerate(self._obs_rows):
            network.reset_exploration(envs.num_envs, t)  # gSDE: new noise when due (others: nothing)
            if on_host:
                next_obs, reward, terminated, truncated, valid = envs.step_arrays(act(t, obs))
                if t < last:
                    obs_np[t + 1] = next_obs
                else:  # a copy: the env may reuse its array, and the next collect() starts from it
                    self.next_obs = torch.tensor(next_obs, dtype=envs.obs_dtype)
                term_np[t], trunc_np[t], valid_np[t] = terminated, truncated, valid
                if scaler is None:
                    rew_np[t] = reward
                else:  # network.learning_rewards, in NumPy
                    scaler.scale_numpy(reward, terminated | truncated, valid_np[t], rew_np[t])
            else:
                network.observe(obs)
                dist, value = forward(obs)
                actions, log_probs = dist.sample_with_log_prob()
                if value is None:  # has_value was checked in __init__: a network that broke its contract
                    raise RuntimeError("the network returned no value although it has a value head")
                self.act_buf[t], self.logp_buf[t], self.value_buf[t] = actions, log_probs, value
                step = envs.step(network.to_env(actions))
                if t < last:
                    assign_obs(self.obs_buf, t + 1, step.obs)
                else:
                    self.next_obs = step.obs
                self.rew_buf[t] = network.learning_rewards(step.reward, step.terminated | step.truncated, step.valid)
                self.term_buf[t] = step.terminated
                self.trunc_buf[t] = step.truncated
                self.valid_buf[t] = step.valid
        return Batch(
            obs=self.obs_buf, actions=self.act_buf, rewards=self.rew_buf, terminated=self.term_buf,
            truncated=self.trunc_buf, valid=self.valid_buf, next_obs=self.next_obs,
            log_probs=self.logp_buf, values=self.value_buf,
        )
