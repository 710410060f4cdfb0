"""Recurrent policies (core/recurrent.py, algos/sequences.py): a memory task a feed-forward policy cannot
solve, the state reset at every episode start (terminated and truncated), truncation bootstrapped with
the carried state, sequence minibatches, the agent API, the partially observed ids and the refusals."""

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_compare import InProcess  # a backend running each run in this process (tests/ is on sys.path)

import policygrad as pg
from policygrad.algos.on_policy import bootstrap_values
from policygrad.algos.sequences import RecurrentCollector, SequenceBatch
from policygrad.cli import main
from policygrad.core.envs import VecEnv, make_env_fn, make_vec_env
from policygrad.core.errors import UserInputError
from policygrad.core.recurrent import RecurrentActorCritic, RecurrentCore

TESTS = Path(__file__).parent
FAST = dict(progress=False, tensorboard=False, eval_episodes=20, checkpoint_every=0)
CUE = "memory_envs:CueEnv"
# Small and quick on the cue task: 16 copies x 12 steps (4 episodes of 3 steps each), 4 epochs.
CUE_PPO = dict(env_id=CUE, num_envs=16, num_steps=12, num_minibatches=2, update_epochs=4, learning_rate=3e-3,
               gamma=0.9, gae_lambda=0.9, hidden_sizes=(16,), recurrent_size=16, total_steps=4096)


def test_recurrent_ppo_solves_a_memory_task_that_a_feed_forward_policy_cannot(tmp_path):
    recurrent = pg.train(pg.make_config("ppo", recurrent="lstm", **CUE_PPO, **FAST), run_dir=tmp_path / "lstm")
    assert recurrent.evaluation.mean == 1.0  # every cue remembered, 20 episodes
    flat = pg.train(pg.make_config("ppo", **CUE_PPO, **FAST), run_dir=tmp_path / "mlp")
    # The last observation is the same after either cue: one action for both, right for one cue only.
    assert flat.evaluation.mean < 0.8


def _reference_values(network, obs, starts, valid):
    """V(s) of every step of one copy, recomputed episode by episode from a zero state: what the
    collector must have stored if it reset the state at each episode start and nowhere else."""
    values, state = [], network.initial_state(1)
    for t in range(obs.shape[0]):
        if starts[t]:
            state = network.initial_state(1)
        _, value, state = network.step(obs[t:t + 1], state, torch.zeros(1, dtype=torch.bool))
        values.append(value[0])
    return torch.stack(values)


@pytest.mark.parametrize("end", ["terminate", "truncate"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_the_state_is_reset_at_every_episode_start_and_nowhere_else(end, kind):
    torch.manual_seed(0)
    env_id = "memory_envs:NoisyEnv" if end == "terminate" else "memory_envs:truncated_noisy_env"
    envs = VecEnv(gym.vector.SyncVectorEnv([make_env_fn(env_id)] * 3,
                                           autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP))
    network = RecurrentActorCritic(envs.single_observation_space, envs.single_action_space, recurrent=kind,
                                   recurrent_size=8, hidden_sizes=(8,))
    collector = RecurrentCollector(envs, network, num_steps=10, seed=3)
    last_valid = collector.collect().valid[-1].clone()  # (the buffers are reused by the next collect)
    batch = collector.collect()  # the second rollout starts mid-episode, from the carried state
    ends = batch.terminated if end == "terminate" else batch.truncated
    assert bool(ends.any()) and not bool((batch.terminated if end == "truncate" else batch.truncated).any())
    # an episode starts exactly at the step after each autoreset step
    assert torch.equal(batch.episode_starts[1:], ~batch.valid[:-1])
    assert torch.equal(batch.episode_starts[0], ~last_valid)
    # Recompute each copy over the second rollout: its first episode fragment from the stored state at
    # step 0 (what the first rollout left), every later episode from zeros. The autoreset step's value
    # (a truncated episode's bootstrap) is the final observation's with the state carried on.
    with torch.no_grad():
        for n in range(3):
            values, state = [], batch.states[0, n:n + 1]
            for t in range(10):
                if batch.episode_starts[t, n]:
                    state = network.initial_state(1)
                _, value, state = network.step(batch.obs[t, n:n + 1], state, torch.zeros(1, dtype=torch.bool))
                values.append(value[0])
            torch.testing.assert_close(torch.stack(values), batch.values[:, n], rtol=0, atol=1e-6)
        # a leaking state gives other values: the reference above would fail for such a collector
        leaked, state = [], batch.states[0, :1]
        for t in range(10):
            _, value, state = network.step(batch.obs[t, :1], state, torch.zeros(1, dtype=torch.bool))
            leaked.append(value[0])
        later = batch.episode_starts[1:, 0].nonzero()
        if len(later):
            t0 = int(later[0]) + 1
            assert not torch.allclose(torch.stack(leaked)[t0:], batch.values[t0:, 0], atol=1e-6)


def test_a_truncated_episode_is_bootstrapped_with_the_state_its_final_observation_would_have():
    torch.manual_seed(1)
    env = "memory_envs:truncated_noisy_env"
    envs = make_vec_env(env, 2)
    network = RecurrentActorCritic(envs.single_observation_space, envs.single_action_space, recurrent_size=8,
                                   hidden_sizes=(8,))
    # TimeLimit 4: steps 0-3 an episode (truncated at 3), 4 the autoreset step, 5-8 the next, truncated
    # at 8, the rollout's last step: its bootstrap is V(next_obs) with the state after step 8.
    collector = RecurrentCollector(envs, network, num_steps=9, seed=0)
    batch = collector.collect()
    assert batch.truncated[3].all() and batch.truncated[8].all() and not batch.valid[4].any()
    next_values = bootstrap_values(batch, network)
    with torch.no_grad():
        for n in range(2):
            for first, last, final_obs in ((0, 3, batch.obs[4, n]), (5, 8, batch.next_obs[n])):
                state = network.initial_state(1)
                for t in range(first, last + 1):
                    _, _, state = network.step(batch.obs[t, n:n + 1], state, torch.zeros(1, dtype=torch.bool))
                _, expected, _ = network.step(final_obs[None], state, torch.zeros(1, dtype=torch.bool))
                torch.testing.assert_close(next_values[last, n], expected[0], rtol=0, atol=1e-6)
                _, from_zero, _ = network.step(final_obs[None], network.initial_state(1),
                                               torch.zeros(1, dtype=torch.bool))
                assert not torch.isclose(next_values[last, n], from_zero[0], atol=1e-6)  # a reset would give this


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_sequence_with_episode_starts_inside_equals_stepping_it(kind):
    torch.manual_seed(2)
    core = RecurrentCore(kind, 5, 7, 2)
    x, state = torch.randn(12, 6, 5), torch.randn(6, core.state_size)
    starts = torch.rand(12, 6) < 0.25
    starts[5, 0] = True  # at least one start inside
    out, after = core(x, state, starts)
    assert after is None  # (a replay needs only the outputs)
    stepped, s = [], state
    for t in range(12):
        o, s = core(x[t:t + 1], s, starts[t:t + 1])
        stepped.append(o[0])
    torch.testing.assert_close(out, torch.stack(stepped), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bptt", [0, 4])
def test_sequence_minibatches_replay_the_collected_log_probs(bptt):
    torch.manual_seed(3)
    envs = make_vec_env("memory_envs:NoisyEnv", 4)
    network = RecurrentActorCritic(envs.single_observation_space, envs.single_action_space, recurrent_size=8,
                                   hidden_sizes=(8,))
    collector = RecurrentCollector(envs, network, num_steps=8, seed=0)
    collector.collect()
    batch = collector.collect()
    zeros = torch.zeros_like(batch.rewards)
    data = SequenceBatch.from_batch(batch, zeros, zeros, bptt)
    assert len(data) == int(batch.valid.sum()) and data.num_sequences == (4 if bptt == 0 else 8)
    parts = data.minibatches(2)
    assert sum(len(mb) for mb in parts) == len(data)
    with torch.no_grad():
        for mb in [data, *parts]:
            dist, values = mb.dist_and_value(network)
            torch.testing.assert_close(dist.log_prob(mb.actions), mb.log_probs, rtol=0, atol=1e-5)
            torch.testing.assert_close(values, mb.values, rtol=0, atol=1e-5)


@pytest.mark.parametrize("algo,extra", [("ppo", dict(recurrent="gru", bptt_length=8, num_minibatches=4,
                                                     update_epochs=1)),
                                        ("a2c", dict(recurrent="lstm")),
                                        # (a spawned worker imports torch: 12 s, so in the slow suite)
                                        pytest.param("a3c", dict(recurrent="lstm", num_workers=1),
                                                     marks=pytest.mark.slow)])
def test_each_recurrent_algorithm_trains_evaluates_and_loads(tmp_path, algo, extra):
    config = pg.make_config(algo, env_id="CartPoleNoVel-v1", total_steps=320, num_envs=2, num_steps=16,
                            **extra, **{**FAST, "eval_episodes": 2})
    result = pg.train(config, run_dir=tmp_path / algo)
    agent = pg.load(result.run_dir)
    assert agent.recurrent and agent.config.recurrent == extra["recurrent"]
    assert pg.evaluate(agent, episodes=2).returns == result.evaluation.returns  # deterministic, same seeds
    state = agent.initial_state(1)
    obs = np.zeros(2, dtype=np.float32)
    action, state2 = agent.act(obs, state)
    assert action.shape == () and state2.shape == state.shape and np.abs(state2).sum() > 0
    again, _ = agent.act(obs)  # None: the initial state
    assert again == action


def test_a_feed_forward_agent_keeps_its_signature_and_refuses_a_state(tmp_path):
    result = pg.train(pg.make_config("ppo", env_id="CartPoleNoVel-v1", recurrent="none", total_steps=256, num_envs=2,
                                     num_steps=64, num_minibatches=4,
                                     **{**FAST, "eval_episodes": 1}), run_dir=tmp_path / "ff")
    agent = result.agent
    assert not agent.recurrent and agent.act(np.zeros(2)).shape == ()
    with pytest.raises(UserInputError, match="feed-forward"):
        agent.act(np.zeros(2), np.zeros((1, 4)))


def test_partially_observed_ids_hide_the_velocities():
    full, _ = gym.make("CartPole-v1").reset(seed=5)
    part, _ = gym.make("CartPoleNoVel-v1").reset(seed=5)
    np.testing.assert_array_equal(part, full[[0, 2]])
    pend, _ = gym.make("PendulumNoVel-v1").reset(seed=5)
    assert pend.shape == (2,)
    generic = gym.make("PartiallyObserved-v0", env_id="Acrobot-v1", hide=[4, 5])
    assert generic.observation_space.shape == (4,)


@pytest.mark.parametrize("args,field", [
    (("train", "reinforce", "--env", "CartPoleNoVel-v1", "--recurrent", "lstm"), "recurrent"),
    (("train", "actor_critic", "--env", "CartPoleNoVel-v1", "--recurrent", "gru"), "recurrent"),
    (("train", "ppo", "--env", "CartPoleNoVel-v1", "--recurrent", "lstm", "--num-envs", "8",
      "--num-minibatches", "3", "--num-steps", "48"), "num_minibatches"),
    (("train", "ppo", "--env", "CartPoleNoVel-v1", "--recurrent", "lstm", "--num-steps", "32",
      "--bptt-length", "5"), "bptt_length"),
    (("train", "ppo", "--env", "PartiallyObserved-v0", "--env-kwargs",
      json.dumps({"env_id": "CartPole-v1", "hide": [7]})), "hide"),
])
def test_bad_recurrent_input_is_one_line_and_exit_2(args, field, capsys, tmp_path):
    assert main([*args, "--run-dir", str(tmp_path / "never"), "--total-steps", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err, err
    assert not (tmp_path / "never").exists()


def test_the_core_may_read_the_observation_and_feed_layers_before_the_heads(tmp_path):
    """hidden_sizes=() and post_core_sizes: SB3-contrib's observation -> LSTM -> MLP -> heads; the
    replay of a sequence still equals stepping it."""
    torch.manual_seed(4)
    obs_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    network = RecurrentActorCritic(obs_space, gym.spaces.Discrete(2), recurrent_size=6, hidden_sizes=(),
                                   post_core_sizes=(5,), activation="relu")
    assert network.policy_core.rnn.input_size == 3 and network.value_core.rnn.input_size == 3
    assert network.policy_head.last_layer.in_features == 5 and network.value_head.in_features == 5
    assert network.policy_post[0].in_features == 6 and network.value_post[0].in_features == 6
    obs, starts = torch.randn(7, 4, 3), torch.rand(7, 4) < 0.3
    state = torch.randn(4, network.state_size)
    with torch.no_grad():
        dist, values = network.replay(obs, state, starts)
        stepped, s = [], state
        for t in range(7):
            d, v, s = network.step(obs[t], s, starts[t])
            stepped.append((d.logits, v))
    torch.testing.assert_close(dist.logits, torch.cat([lg for lg, _ in stepped]), rtol=0, atol=1e-5)
    torch.testing.assert_close(values, torch.cat([v for _, v in stepped]), rtol=0, atol=1e-5)
    # Feed-forward, the two are one MLP (a sweep may vary recurrent=none,lstm on such a preset); with
    # neither, nothing would read the observation.
    flat = pg.make_config("ppo", env_id="CartPole-v1", hidden_sizes=(), post_core_sizes=(8, 4), total_steps=64,
                          num_envs=2, num_steps=32, num_minibatches=1, update_epochs=1, progress=False,
                          tensorboard=False, eval_episodes=1, checkpoint_every=0)
    net = pg.train(flat, run_dir=tmp_path / "flat").agent.network
    assert type(net).__name__ == "ActorCritic" and [net.policy_body[i].out_features for i in (0, 2)] == [8, 4]
    with pytest.raises(UserInputError, match=r"hidden_sizes=\(\).*recurrent"):
        pg.make_config("ppo", env_id="CartPole-v1", hidden_sizes=())



def test_eval_video_and_compare_take_a_recurrent_run(tmp_path):
    pytest.importorskip("moviepy")
    run = tmp_path / "run"
    # (an empty --hidden-sizes: the LSTM reads the observation)
    assert main(["train", "ppo", "--env", "CartPoleNoVel-v1", "--run-dir", str(run), "--total-steps", "256",
                 "--num-envs", "2", "--num-steps", "32", "--num-minibatches", "2", "--hidden-sizes",
                 "--post-core-sizes", "8", "--recurrent-size", "8", "--progress", "false", "--tensorboard", "false",
                 "--eval-episodes", "1", "--checkpoint-every", "0"]) == 0
    assert json.loads((run / "config.json").read_text())["config"]["hidden_sizes"] == []
    videos = tmp_path / "videos"
    assert main(["eval", str(run), "--episodes", "1", "--video", str(videos), "--video-episodes", "1"]) == 0
    assert len(list(videos.glob("*.mp4"))) == 1
    study = pg.compare("CartPoleNoVel-v1", "ppo,random", seeds=1, total_steps=256, eval_every=128,
                       eval_episodes=2, out_dir=tmp_path / "cmp", backend=InProcess(), verbose=False,
                       shared={"num_envs": 2, "num_minibatches": 2, "recurrent_size": 8})
    assert [r["status"] for r in study.results] == ["done", "done"]
    spec = json.loads((study.study_dir / "study.json").read_text())
    assert spec["methods"]["ppo"]["config"]["recurrent"] == "lstm"  # CartPoleNoVel's preset
    evals = (study.study_dir / "runs" / "method=ppo__seed=1" / "evals.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in evals[1:]] == ["0", "128", "256"]
