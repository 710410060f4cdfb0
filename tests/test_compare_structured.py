"""policygrad compare on environments that need keyword arguments, give Dict observations or action masks:
every method (policygrad's, random, sb3:ppo) makes the environment with ``--env-kwargs`` and acts under
its masks, the arguments are recorded and kept by a resumed comparison, and what a method cannot do is
refused in one line before anything is written.

The environment of the end-to-end comparison is the trap of tests/masked_envs.py with a Dict observation
(``{"state", "action_mask"}``): a disallowed action scores -10 and ends the episode, and ``length`` (an
environment argument) sets how many +1 steps an episode has. So an evaluation scores exactly ``length``
when the method obeyed the masks on every step of the environment made with the arguments, and anything
else otherwise: either mistake shows in the number."""

import json

import gymnasium as gym
import numpy as np
import pytest
from test_compare import InProcess  # a backend running each run in this process (tests/ is on sys.path)

import policygrad as pg
from policygrad.cli import main
from policygrad.comparison import methods as cmp
from policygrad.comparison import observations
from policygrad.core.errors import UserInputError

pytest.importorskip("sb3_contrib", reason="the compare extra (sb3-contrib's MaskablePPO; make test installs it)")

ENV = "masked_envs:TrapObsEnv"
LENGTH = 6  # not the trap's default (10): a method that made the env without the arguments scores 10 or less
KWARGS = {"length": LENGTH}
OPTIONS = dict(seeds=1, total_steps=128, eval_every=64, eval_episodes=2, shared={"num_envs": 2, "num_steps": 16},
               env_kwargs=KWARGS)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    result = pg.compare(ENV, "ppo,random,sb3:ppo", out_dir=out, backend=InProcess(), verbose=False, **OPTIONS)
    return result


def evals(study_dir, run_id):
    lines = (study_dir / "runs" / run_id / "evals.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def test_every_method_plays_the_environment_made_with_its_arguments_and_obeys_its_masks(study):
    assert [(r["method"], r["status"]) for r in study.results] == [("ppo", "done"), ("random", "done"),
                                                                    ("sb3:ppo", "done")]
    for row in study.results:
        marks = evals(study.study_dir, row["run_id"])
        assert [int(m["global_step"]) for m in marks] == [0, 64, 128], row["run_id"]
        # every evaluation episode of every method: LENGTH allowed steps, never a disallowed one
        assert {(float(m["eval_min"]), float(m["eval_max"])) for m in marks} == {(LENGTH, LENGTH)}, row["run_id"]
    # policygrad's training episodes too (a masked policy, on the env made with length=6)
    episodes = (study.study_dir / "runs" / "method=ppo__seed=1" / "episodes.csv").read_text().splitlines()[1:]
    assert episodes and {float(line.split(",")[2]) for line in episodes} == {LENGTH}  # (step, seconds, return, length)


def test_the_arguments_and_how_each_method_reads_the_env_are_recorded(study):
    spec = json.loads((study.study_dir / "study.json").read_text())
    assert spec["env_kwargs"] == KWARGS
    assert spec["methods"]["ppo"]["config"]["env_kwargs"] == KWARGS
    sb3 = spec["methods"]["sb3:ppo"]
    assert sb3["policy"] == "MultiInputPolicy" and sb3["learner"] == "sb3_contrib.MaskablePPO"
    assert sb3["masks"] == 'observation["action_mask"]'
    assert "allowed actions" in spec["methods"]["random"]["source"]
    report = (study.study_dir / "report.md").read_text()
    assert f'on {ENV} (env_kwargs {{"length": {LENGTH}}})' in report.splitlines()[0]
    assert f"| env_kwargs | length={LENGTH} |" in report


def test_a_resumed_comparison_reruns_its_runs_with_the_recorded_arguments(study, capsys):
    for run_id in ("method=random__seed=1", "method=sb3_ppo__seed=1"):  # as if killed before they finished
        (study.study_dir / "runs" / run_id / "eval.json").unlink()
    again = pg.compare(ENV, "ppo,random,sb3:ppo", out_dir=study.study_dir.parent, backend=InProcess(), verbose=False,
                       resume=True, **OPTIONS)
    assert [float(r["final_eval"]) for r in again.results] == [LENGTH] * 3
    for run_id in ("method=random__seed=1", "method=sb3_ppo__seed=1"):
        assert json.loads((study.study_dir / "runs" / run_id / "eval.json").read_text())["returns"] == [LENGTH] * 2
    # the same comparison without its arguments is another one: refused, in one line, naming them
    code = main(["compare", "--env", ENV, "--methods", "ppo,random,sb3:ppo", "--seeds", "1", "--total-steps", "128",
                 "--eval-every", "64", "--eval-episodes", "2", "--shared", "num_envs=2", "--shared", "num_steps=16",
                 "--out-dir", str(study.study_dir.parent), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert 'env_kwargs: {"length": 6} there, {} here' in err[0] and "repeat the command" in err[0]


def test_sb3_trains_on_copies_made_with_the_arguments_and_their_masks():
    protocol = {"env_id": ENV, "env_kwargs": KWARGS, "action_masking": "auto"}
    with observations.protocol_env(protocol):
        env, policy = cmp.sb3_training_env(ENV, 2, seed=3, masks="observation")
    assert policy == "MultiInputPolicy"
    assert list(env.observation_space.spaces) == ["state"]  # the mask is not a feature
    obs = env.reset()
    masks = np.stack(env.env_method("action_masks"))
    assert masks.dtype == bool and masks.shape == (2, 4)
    assert np.array_equal(masks, obs["state"] > 0.5)  # the trap shows its mask in the state too
    assert [e.unwrapped.length for e in env.envs] == [LENGTH, LENGTH]


@pytest.mark.parametrize("space", [gym.spaces.Discrete(5, start=2), gym.spaces.MultiDiscrete([3, 4])])
def test_random_samples_only_allowed_actions_and_each_of_them_alike(space):
    rng = np.random.default_rng(0)
    nvec = [space.n] if isinstance(space, gym.spaces.Discrete) else list(space.nvec)
    rows = 4000
    mask = rng.random((rows, sum(nvec))) < 0.4
    offsets = np.cumsum([0, *nvec[:-1]])
    for o, n in zip(offsets, nvec):
        mask[:, o] |= ~mask[:, o:o + n].any(axis=1)  # at least one allowed per dimension
    policy = observations.RandomPolicy(space, np.random.default_rng(1))
    actions = policy(np.zeros((rows, 1)), mask).reshape(rows, -1) - np.asarray(space.start).reshape(-1)
    for d, (o, n) in enumerate(zip(offsets, nvec)):
        taken = mask[np.arange(rows), o + actions[:, d]]
        assert int((~taken).sum()) == 0  # not one masked action in 4000 rows
        # uniform among the allowed: where all n are allowed, each is taken about 1/n of the time
        full = mask[:, o:o + n].all(axis=1)
        counts = np.bincount(actions[~full, d], minlength=n)
        assert counts.min() > 0
        expected = (mask[~full, o:o + n] / mask[~full, o:o + n].sum(axis=1, keepdims=True)).sum(axis=0)
        assert np.abs(counts - expected).max() < 5 * np.sqrt(expected.max())
    unmasked = policy(np.zeros((rows, 1)), None).reshape(rows, -1) - np.asarray(space.start).reshape(-1)
    assert all(set(np.unique(unmasked[:, d])) == set(range(n)) for d, n in enumerate(nvec))


def run_cli(capsys, tmp_path, env, methods, *extra):
    code = main(["compare", "--env", env, "--methods", methods, "--seeds", "1", "--total-steps", "128",
                 "--out-dir", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("env, methods, words", [
    ("masked_envs:ImageVectorTupleEnv", "random,sb3:ppo", ["sb3:ppo cannot run on", "Tuple observation space"]),
    ("masked_envs:NestedEnv", "sb3:a2c", ["sb3:a2c cannot run on", "part 'inner' is Tuple"]),
    ("masked_envs:ImageVectorEnv", "sb3:ppo", ["sb3:ppo cannot run on", "image part 'image' (8, 8, 1)", "36x36"]),
    ("masked_envs:TrapEnv", "sb3:a2c", ["sb3:a2c cannot run on", 'info["action_mask"]', "would ignore",
                                        "action_masking=off"]),
    ("masked_envs:MatrixActionEnv", "random", None),  # Box (2, 2) actions: random takes them (no refusal)
])
def test_what_a_method_cannot_do_is_refused_in_one_line_and_nothing_is_written(capsys, tmp_path, env, methods, words):
    code, err = run_cli(capsys, tmp_path, env, methods, "--dry-run")
    if words is None:
        assert code == 0
        return
    assert code == 2 and len(err) == 1, err
    assert all(w in err[0] for w in words), err[0]
    assert not (tmp_path / "out").exists()


def test_sb3_ppo_on_a_masked_env_without_sb3_contrib_is_refused_rather_than_run_unmasked(capsys, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setattr(observations, "sb3_contrib_available", lambda: False)
    code, err = run_cli(capsys, tmp_path, "masked_envs:TrapMethodEnv", "random,sb3:ppo")
    assert code == 2 and len(err) == 1
    assert "sb3:ppo cannot run on masked_envs:TrapMethodEnv" in err[0] and "env.action_masks()" in err[0]
    assert "MaskablePPO" in err[0] and "pip install sb3-contrib" in err[0]
    assert not (tmp_path / "out").exists()
    # without masks it is SB3's own PPO again, and the comparison says so
    plan = cmp.make_comparison("masked_envs:TrapMethodEnv", "sb3:ppo", 1, 128,
                               shared={"action_masking": "off"}).spec.methods["sb3:ppo"]
    assert "learner" not in plan and "masks" not in plan


@pytest.mark.parametrize("value", ['{"length": 6', "[6]", '"length"', "6"])
def test_env_kwargs_that_are_not_a_json_object_exit_2_in_one_line(capsys, tmp_path, value):
    code, err = run_cli(capsys, tmp_path, ENV, "random", "--env-kwargs", value)
    assert code == 2 and len(err) == 1 and "--env-kwargs" in err[0]
    assert not (tmp_path / "out").exists()


def test_env_kwargs_go_through_env_kwargs_not_shared():
    with pytest.raises(UserInputError, match="--shared env_kwargs: give the environment's arguments with --env-kwargs"):
        cmp.make_comparison(ENV, "ppo", 1, 128, shared={"env_kwargs": KWARGS})
    with pytest.raises(UserInputError, match="env_kwargs=.*JSON values"):
        cmp.make_comparison(ENV, "ppo", 1, 128, env_kwargs={"length": print})
