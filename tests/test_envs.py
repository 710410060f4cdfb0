"""Vector environments and episode collection: NEXT_STEP autoreset masks, episode bookkeeping,
terminated vs truncated, seeding, and whole-episode quotas.

The probe environments (tests/probe_envs.py) have episodes of a known length with reward 1 per step,
so every flag and count below is exact.
"""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from policygrad.algos.rollout import collect_episodes, split_quota
from policygrad.core.envs import Episode, make_vec_env
from policygrad.core.networks import ActorCritic


def run(envs, steps):
    """Step ``envs`` ``steps`` times with random actions; returns stacked (T, N) columns."""
    cols = {"obs": [], "reward": [], "terminated": [], "truncated": [], "valid": []}
    for _ in range(steps):
        step = envs.step(envs.env.action_space.sample())
        for key in cols:
            cols[key].append(getattr(step, key))
    return {k: torch.stack(v) for k, v in cols.items()}


def episodes_from_steps(cols):
    """The finished episodes, reconstructed from the step stream: (env, return, length, end step count)."""
    T, N = cols["reward"].shape
    out = []
    for i in range(N):
        ret, length = 0.0, 0
        for t in range(T):
            if not cols["valid"][t, i]:
                assert ret == 0.0 and length == 0  # an autoreset step only follows an episode end
                continue
            ret += float(cols["reward"][t, i])
            length += 1
            if cols["terminated"][t, i] or cols["truncated"][t, i]:
                out.append((i, ret, length, (t + 1) * N))
                ret, length = 0.0, 0
    return sorted(out)


def as_tuples(episodes):
    return sorted((e.env_index, e.ret, e.length, e.end_step) for e in episodes)


# -- the vector env itself ---------------------------------------------------------------------------
def test_cartpole_uses_its_native_vector_env_and_acrobot_a_sync_one():
    cartpole, acrobot = make_vec_env("CartPole-v1", 2), make_vec_env("Acrobot-v1", 2)
    assert not isinstance(cartpole.env, gym.vector.SyncVectorEnv)
    assert type(cartpole.env).__name__ == "CartPoleVectorEnv"
    assert isinstance(acrobot.env, gym.vector.SyncVectorEnv)
    for envs in (cartpole, acrobot):
        assert envs.env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        envs.close()


def test_probe_env_steps_are_exact_including_the_autoreset_step():
    envs = make_vec_env("probe_envs:CountingEnv", 2, length=3)
    obs = envs.reset(seed=0)
    assert obs.shape == (2, 1) and torch.all(obs == 0)
    cols = run(envs, 10)
    # Rows 0-2 episode 1 (ends at 2), row 3 autoreset, rows 4-6 episode 2, row 7 autoreset, rows 8-9 ...
    both = lambda xs: torch.tensor([[x, x] for x in xs])  # noqa: E731
    assert torch.equal(cols["reward"], both([1, 1, 1, 0, 1, 1, 1, 0, 1, 1]).float())
    assert torch.equal(cols["valid"], both([1, 1, 1, 0, 1, 1, 1, 0, 1, 1]).bool())
    assert torch.equal(cols["terminated"], both([0, 0, 1, 0, 0, 0, 1, 0, 0, 0]).bool())
    assert not cols["truncated"].any()
    # The ending step returns the episode's final observation (3 steps taken); the autoreset step the
    # first observation of the next episode.
    assert torch.equal(cols["obs"][:, 0, 0], torch.tensor([1, 2, 3, 0, 1, 2, 3, 0, 1, 2]).float())


def test_probe_env_episodes_are_recorded_once_with_exact_return_length_and_step():
    envs = make_vec_env("probe_envs:CountingEnv", 2, length=3)
    envs.reset(seed=0)
    run(envs, 10)
    episodes = envs.pop_episodes()
    # Two episodes per copy (ending at rows 2 and 6); the vector env had taken 3*2 and 7*2 steps then.
    assert as_tuples(episodes) == [(0, 3.0, 3, 6), (0, 3.0, 3, 14), (1, 3.0, 3, 6), (1, 3.0, 3, 14)]
    assert envs.pop_episodes() == []  # handed over once
    assert envs.step_count == 20


def test_truncating_probe_env_reports_truncated_never_terminated():
    envs = make_vec_env("probe_envs:TruncatingEnv", 3, length=4)
    envs.reset(seed=0)
    cols = run(envs, 10)
    assert not cols["terminated"].any()
    # Rows 0-3 episode 1 (truncated at 3), row 4 autoreset, rows 5-8 episode 2 (truncated at 8), row 9 ...
    assert cols["truncated"][:, 0].nonzero().flatten().tolist() == [3, 8]
    assert cols["valid"][:, 0].logical_not().nonzero().flatten().tolist() == [4, 9]
    assert as_tuples(envs.pop_episodes()) == sorted((i, 4.0, 4, s) for i in range(3) for s in (12, 27))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1"])
def test_real_env_episodes_match_the_step_stream_exactly(env_id):
    envs = make_vec_env(env_id, 4)
    envs.reset(seed=0)
    cols = run(envs, 300 if env_id == "CartPole-v1" else 1100)
    finished = envs.pop_episodes()
    assert len(finished) > 4
    assert as_tuples(finished) == episodes_from_steps(cols)
    # Every step after an episode end is an invalid autoreset step with reward 0, and no other is.
    ends = cols["terminated"] | cols["truncated"]
    assert torch.equal(~cols["valid"][1:], ends[:-1])
    assert torch.all(cols["reward"][~cols["valid"]] == 0)
    assert not (cols["terminated"] & cols["truncated"]).any()
    envs.close()


def test_cartpole_episodes_end_by_termination_or_truncation_at_500():
    envs = make_vec_env("CartPole-v1", 2)
    envs.reset(seed=0)
    saw = {"terminated": False, "truncated": False}
    # Copy 0 pushes one way and falls: terminated. Copy 1 balances by a simple rule and reaches the
    # 500-step time limit: truncated, not terminated.
    obs = envs.reset(seed=0)
    for _ in range(520):
        balance = int(obs[1, 2] + 0.5 * obs[1, 3] > 0)  # push towards the side the pole leans to
        step = envs.step(np.array([0, balance]))
        obs = step.obs
        saw["terminated"] |= bool(step.terminated[0])
        saw["truncated"] |= bool(step.truncated[1])
        assert not step.truncated[0] and not step.terminated[1]
    assert saw == {"terminated": True, "truncated": True}
    lengths = [e.length for e in envs.pop_episodes() if e.env_index == 1]
    assert lengths == [500]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1"])
def test_reset_with_the_same_seed_gives_identical_observations(env_id):
    a, b = make_vec_env(env_id, 3), make_vec_env(env_id, 3)
    obs_a, obs_b = a.reset(seed=7), b.reset(seed=7)
    assert torch.equal(obs_a, obs_b)
    assert not torch.equal(obs_a[0], obs_a[1])  # copies differ from one another
    actions = np.array([0, 1, 1])
    for _ in range(5):
        assert torch.equal(a.step(actions).obs, b.step(actions).obs)
    assert torch.equal(a.reset(seed=7), obs_a)  # the same env again, same seed: same start
    assert not torch.equal(b.reset(seed=8), obs_a)


def test_reset_drops_episodes_in_flight():
    envs = make_vec_env("probe_envs:CountingEnv", 1, length=3)
    envs.reset(seed=0)
    envs.step(np.array([0]))
    envs.step(np.array([0]))
    envs.reset(seed=0)
    run(envs, 3)
    assert as_tuples(envs.pop_episodes()) == [(0, 3.0, 3, 5)]  # 3 steps, not 5; step count keeps going


# -- whole-episode collection ----------------------------------------------------------------------------
def test_split_quota():
    assert split_quota(7, 3) == [3, 2, 2]
    assert split_quota(8, 8) == [1] * 8
    assert split_quota(5, 2) == [3, 2]
    assert split_quota(9, 4) == [3, 2, 2, 2]
    for episodes in range(1, 20):
        for n in range(1, episodes + 1):
            quota = split_quota(episodes, n)
            assert sum(quota) == episodes and max(quota) - min(quota) <= 1


def probe_agent():
    torch.manual_seed(0)
    return ActorCritic(gym.spaces.Box(0.0, np.inf, (1,), np.float32), gym.spaces.Discrete(2), hidden_sizes=(8,))


def cartpole_agent():
    return ActorCritic(gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))


def test_collect_episodes_on_a_probe_env_is_exact():
    envs = make_vec_env("probe_envs:CountingEnv", 3, length=3)
    batch, episodes, steps = collect_episodes(envs, probe_agent(), 7, seed=0)
    # Quotas [3, 2, 2]. Copy 0: episodes at rows 0-2, 4-6, 8-10 -> 11 rows. Copies 1 and 2 finish at
    # row 6; rows 7-10 are past their quota (their episode ending at row 10 is not counted).
    assert batch.num_steps == 11 and steps == 33
    assert sorted(e.env_index for e in episodes) == [0, 0, 0, 1, 1, 2, 2]
    assert all((e.ret, e.length) == (3.0, 3) for e in episodes)
    yes, no = True, False
    copy0 = [yes, yes, yes, no, yes, yes, yes, no, yes, yes, yes]
    copy1 = [yes, yes, yes, no, yes, yes, yes, no, no, no, no]
    assert batch.valid.tolist() == [[a, b, b] for a, b in zip(copy0, copy1)]
    assert int(batch.valid.sum()) == sum(e.length for e in episodes) == 21
    assert batch.terminated[:, 1].nonzero().flatten().tolist() == [2, 6, 10]  # stored, but row 10 invalid
    assert torch.all(batch.rewards[batch.valid] == 1.0)
    assert batch.obs.shape == (11, 3, 1) and batch.actions.shape == (11, 3) and batch.next_obs.shape == (3, 1)
    # Observations are the ones the actions were taken on: 0, 1, 2 (then the final obs 3 at row 3)
    assert batch.obs[:4, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_collect_episodes_keeps_truncation_flags_apart():
    envs = make_vec_env("probe_envs:TruncatingEnv", 2, length=2)
    batch, episodes, _ = collect_episodes(envs, probe_agent(), 4, seed=0)
    assert len(episodes) == 4
    assert not batch.terminated.any()
    assert int((batch.truncated & batch.valid).sum()) == 4


@pytest.mark.parametrize("episodes,num_envs", [(7, 3), (8, 8), (5, 1)])
def test_collect_episodes_on_cartpole_returns_exactly_the_requested_episodes(episodes, num_envs):
    torch.manual_seed(0)
    agent = cartpole_agent()
    envs = make_vec_env("CartPole-v1", num_envs)
    batch, finished, steps = collect_episodes(envs, agent, episodes, seed=0)
    assert len(finished) == episodes
    per_copy = [sum(1 for e in finished if e.env_index == i) for i in range(num_envs)]
    assert per_copy == split_quota(episodes, num_envs)
    assert int(batch.valid.sum()) == sum(e.length for e in finished)
    assert steps == batch.num_steps * num_envs
    # Per copy, the valid steps are exactly its counted episodes' steps, and returns match rewards.
    for i in range(num_envs):
        mine = [e for e in finished if e.env_index == i]
        assert int(batch.valid[:, i].sum()) == sum(e.length for e in mine)
        assert float(batch.rewards[:, i][batch.valid[:, i]].sum()) == pytest.approx(sum(e.ret for e in mine))
    # Once a copy has its quota, every later step of it is invalid.
    for i in range(num_envs):
        ends = (batch.terminated[:, i] | batch.truncated[:, i]) & batch.valid[:, i]
        last_end = int(ends.nonzero().max())
        assert not batch.valid[last_end + 1:, i].any()


def test_collect_episodes_with_the_same_seed_is_reproducible():
    envs = make_vec_env("CartPole-v1", 2)
    torch.manual_seed(1)
    a, ep_a, _ = collect_episodes(envs, cartpole_agent(), 4, seed=3)
    torch.manual_seed(1)
    b, ep_b, _ = collect_episodes(envs, cartpole_agent(), 4, seed=3)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.actions, b.actions)
    assert [(e.env_index, e.length) for e in ep_a] == [(e.env_index, e.length) for e in ep_b]


def test_episode_is_a_frozen_record():
    e = Episode(env_index=1, ret=2.0, length=3, end_step=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.ret = 5.0
