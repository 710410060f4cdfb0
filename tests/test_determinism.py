"""All randomness derives from one seed: same seed, same machine, CPU -> identical parameters, identical
episodes and identical learning curves, for every synchronous algorithm (A3C's Hogwild workers race by
design). And a saved run loads into an agent that acts on one observation or a batch."""

import csv

import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.core.envs import env_spaces
from policygrad.core.networks import build_agent


def config(seed: int) -> pg.ReinforceConfig:
    return pg.ReinforceConfig(total_steps=3000, seed=seed, progress=False, tensorboard=False,
                              eval_episodes=2, device="cpu")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism")
    return {name: pg.train(config(seed), run_dir=root / name) for name, seed in
            (("a", 1), ("b", 1), ("c", 2))}


# Small runs of every synchronous algorithm (A3C is not reproducible: its workers race).
# (REINFORCE's pair is the ``runs`` fixture above.)
ALGORITHM_RUNS = {
    "actor_critic": dict(total_steps=320, num_envs=4),
    "a2c": dict(total_steps=800, num_envs=4, normalize_obs=True, reward_norm="scale"),
    "ppo": dict(total_steps=768, num_envs=4, num_steps=32, update_epochs=2),
}


@pytest.fixture(scope="module")
def algorithm_runs(tmp_path_factory, runs):
    root = tmp_path_factory.mktemp("determinism_algorithms")
    pairs = {algo: [pg.train(pg.make_config(algo, seed=7, progress=False, tensorboard=False, eval_episodes=2,
                                            device="cpu", **values), run_dir=root / f"{algo}_{i}")
                    for i in range(2)]
             for algo, values in ALGORITHM_RUNS.items()}
    return {"reinforce": [runs["a"], runs["b"]], **pairs}


def csv_rows(path, drop=("wall_time", "perf/sps")) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.mark.parametrize("algo", ["reinforce", *ALGORITHM_RUNS])
def test_every_algorithm_is_reproducible_from_its_seed(algorithm_runs, algo):
    first, second = algorithm_runs[algo]
    a, b = first.agent.network.state_dict(), second.agent.network.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    curve = csv_rows(first.run_dir / "metrics.csv")
    assert len(curve) >= 2 and curve == csv_rows(second.run_dir / "metrics.csv")  # losses, diagnostics, returns
    episodes = csv_rows(first.run_dir / "episodes.csv")
    assert len(episodes) >= 5 and episodes == csv_rows(second.run_dir / "episodes.csv")
    assert first.evaluation.returns == second.evaluation.returns


def episode_rows(run) -> list[dict[str, str]]:
    with open(run.run_dir / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


def episode_returns(run) -> list[str]:
    return [row["return"] for row in episode_rows(run)]


def test_same_seed_twice_gives_identical_parameters(runs):
    a, b = runs["a"].agent.network.state_dict(), runs["b"].agent.network.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_changed_the_parameters(runs):
    cfg = config(1)
    torch.manual_seed(cfg.seed)  # as train() does before building the network: the run's initial weights
    initial = build_agent(cfg, *env_spaces(cfg.env_id), with_value=True).state_dict()
    trained = runs["a"].agent.network.state_dict()
    assert not torch.equal(initial["policy_body.0.weight"], trained["policy_body.0.weight"])


def test_same_seed_twice_gives_identical_episode_returns(runs):
    returns_a, returns_b = episode_returns(runs["a"]), episode_returns(runs["b"])
    assert len(returns_a) >= 8  # at least one update's worth of episodes was logged
    assert returns_a == returns_b
    # Every column but wall_time matches row for row
    without_time = [[{k: v for k, v in row.items() if k != "wall_time"} for row in episode_rows(runs[name])]
                    for name in ("a", "b")]
    assert without_time[0] == without_time[1]
    assert runs["a"].global_step == runs["b"].global_step >= 3000


def test_same_seed_twice_gives_the_same_evaluation(runs):
    assert runs["a"].evaluation.returns == runs["b"].evaluation.returns


def test_a_different_seed_gives_different_parameters_and_episodes(runs):
    a, c = runs["a"].agent.network.state_dict(), runs["c"].agent.network.state_dict()
    assert not torch.equal(a["policy_body.0.weight"], c["policy_body.0.weight"])
    assert episode_returns(runs["a"]) != episode_returns(runs["c"])


def test_loaded_agent_has_the_trained_parameters(runs):
    agent = pg.load(runs["a"].run_dir)
    trained = runs["a"].agent.network.state_dict()
    loaded = agent.network.state_dict()
    assert list(trained) == list(loaded)
    for key in trained:
        assert torch.equal(trained[key], loaded[key]), key
    assert agent.config == runs["a"].agent.config


def test_loaded_agent_acts_on_a_single_observation(runs):
    agent = pg.load(runs["a"].run_dir)
    obs = np.array([0.01, -0.02, 0.03, 0.04], np.float32)
    action = agent.act(obs)
    assert np.ndim(action) == 0 and int(action) in (0, 1)
    logits = agent.network.dist(torch.as_tensor(obs).unsqueeze(0)).dist.logits
    assert int(action) == int(logits.argmax())  # deterministic by default: the mode


def test_loaded_agent_acts_on_a_batch(runs):
    agent = pg.load(runs["a"].run_dir)
    rng = np.random.default_rng(0)
    batch = rng.uniform(-0.05, 0.05, size=(5, 4)).astype(np.float32)
    actions = agent.act(batch)
    assert isinstance(actions, np.ndarray) and actions.shape == (5,)
    assert set(actions.tolist()) <= {0, 1}
    # The batch gives the same actions as one observation at a time
    assert actions.tolist() == [int(agent.act(row)) for row in batch]
    stochastic = agent.act(batch, deterministic=False)
    assert stochastic.shape == (5,) and set(stochastic.tolist()) <= {0, 1}
