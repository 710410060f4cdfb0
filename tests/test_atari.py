"""Atari (core/atari.py): ALE/Pong-v5 is built offline with the standard preprocessing and steps; the
training stack clips rewards to their sign and ends an episode at a life lost (the game going on), the
evaluation stack does neither, and training curves record whole games with their unclipped score; the
frames are uint8 (4, 84, 84), an image by the rule, for the Nature CNN."""

import numpy as np
import pytest
import torch

pytest.importorskip("ale_py", reason="the atari extra (pip install 'policygrad[atari]')")
pytest.importorskip("cv2", reason="the atari extra (pip install 'policygrad[atari]')")

from policygrad.core.atari import is_atari_id, make_atari_env  # noqa: E402
from policygrad.core.errors import UserInputError  # noqa: E402
from policygrad.core.images import image_layout, is_image_space  # noqa: E402
from policygrad.core.networks import ActorCritic  # noqa: E402


def wrappers(env):
    names = []
    while hasattr(env, "env"):
        names.append(type(env).__name__)
        env = env.env
    return names


def test_pong_v5_builds_offline_and_steps_with_the_standard_preprocessing():
    env = make_atari_env("ALE/Pong-v5", training=True)
    obs, _ = env.reset(seed=1)
    space = env.observation_space
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and is_image_space(space)
    assert image_layout(space).channels_first
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)  # v5's sticky actions
    names = wrappers(env)
    assert names[:2] == ["GameLength", "FrameStackObservation"]
    assert {"TransformReward", "LifeLossEndsEpisode", "AtariPreprocessing", "GameRecord"} <= set(names)
    assert "FireOnReset" in names  # Pong's action 1 is FIRE
    rewards = []
    for _ in range(200):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
    assert set(rewards) <= {-1.0, 0.0, 1.0}
    net = ActorCritic(space, env.action_space, shared_trunk=True)  # encoder auto: the Nature CNN
    dist, value = net(torch.as_tensor(obs).unsqueeze(0))
    assert net.encoder_kind == "nature" and dist.sample().shape == (1,) and value.shape == (1,)
    env.close()


@pytest.mark.parametrize("training", [True, False])
def test_the_games_own_grey_observation_gives_the_frames_of_its_rgb_one(training):
    """core/atari.py makes the game with obs_type='grayscale' (cheaper to copy out every frame) because
    AtariPreprocessing reads the emulator's screen itself: the frames, rewards and ends are those of the
    game made with its default RGB observation."""
    grey = make_atari_env("ALE/Pong-v5", training=training)
    rgb = make_atari_env("ALE/Pong-v5", training=training, obs_type="rgb")
    assert grey.unwrapped._obs_type == "grayscale" and rgb.unwrapped._obs_type == "rgb"
    first, _ = grey.reset(seed=5)
    assert np.array_equal(first, rgb.reset(seed=5)[0])
    rng = np.random.default_rng(0)
    changed = 0
    for action in rng.integers(0, 6, 300):
        a, b = grey.step(action), rgb.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
        changed += not np.array_equal(a[0], first)
    assert changed > 250  # the frames moved: the comparison was of a game in play
    grey.close()
    rgb.close()


def test_life_loss_and_clipping_for_training_only():
    train, evaluate = make_atari_env("ALE/Breakout-v5", training=True), make_atari_env("ALE/Breakout-v5",
                                                                                       training=False)
    training_only = {"TransformReward", "LifeLossEndsEpisode", "GameRecord", "GameLength"}
    assert training_only <= set(wrappers(train)) and not training_only & set(wrappers(evaluate))
    for env in (train, evaluate):  # Gymnasium's own life loss would restart the game: never used
        inner = env
        while type(inner).__name__ != "AtariPreprocessing":
            inner = inner.env
        assert inner.terminal_on_life_loss is False
    assert "FireOnReset" in wrappers(train) and "FireOnReset" in wrappers(evaluate)
    for env in (train, evaluate):
        env.close()


def test_atari_ids_and_a_non_atari_id_refused():
    assert is_atari_id("ALE/Pong-v5") and is_atari_id("PongNoFrameskip-v4") and not is_atari_id("CartPole-v1")
    with pytest.raises(UserInputError, match="not an Atari id"):
        make_atari_env("CartPole-v1")


def test_an_ale_id_needs_no_manual_step_and_gets_the_preprocessing_and_preset():
    import policygrad as pg
    from policygrad.algos.rollout import FixedHorizonCollector
    from policygrad.core.envs import env_spaces, make_vec_env
    from policygrad.core.networks import build_agent

    cfg = pg.make_config("ppo", env_id="ALE/Pong-v5")
    assert (cfg.preset, cfg.num_envs, cfg.clip_coef, cfg.anneal_clip, cfg.encoder) == ("ALE/Pong-v5", 8, 0.1, True,
                                                                                       "nature")
    observation_space, action_space = env_spaces("ALE/Pong-v5")
    assert observation_space.shape == (4, 84, 84) and observation_space.dtype == np.uint8
    envs = make_vec_env("ALE/Pong-v5", 2)
    net = build_agent(cfg, observation_space, action_space, with_value=True)
    batch = FixedHorizonCollector(envs, net, num_steps=4, seed=1).collect()
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (4, 2, 4, 84, 84)
    envs.close()


def test_the_atari_preset_anneals_over_the_zoos_ten_million_steps_whatever_the_runs_length():
    """A 2M-step Pong run keeps the zoo's 10M-step schedule (lr and clip at 80% at its end: how it reached
    18); a run longer than 10M is refused in one line naming the field, and runs with --schedule-steps 0."""
    import policygrad as pg

    for env_id in ("ALE/Pong-v5", "PongNoFrameskip-v4", "ALE/Breakout-v5"):
        short = pg.make_config("ppo", env_id=env_id, total_steps=2_000_000)
        assert (short.total_steps, short.anneal_steps) == (2_000_000, 10_000_000)
        with pytest.raises(UserInputError, match=r"schedule_steps=10000000 is invalid: .*>= total_steps"):
            pg.make_config("ppo", env_id=env_id, total_steps=20_000_000)
        assert pg.make_config("ppo", env_id=env_id, total_steps=20_000_000, schedule_steps=0).anneal_steps == 20_000_000


def test_without_the_atari_extra_an_ale_id_is_one_line_naming_it(monkeypatch):
    import sys

    from policygrad.core.atari import register_atari

    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py raises ImportError
    with pytest.raises(UserInputError, match=r"pip install 'policygrad\[atari\]'"):
        register_atari()


@pytest.mark.parametrize("num_envs", [1, 2])  # one copy: VecEnv steps it directly
def test_training_episodes_end_at_a_lost_life_and_the_curve_records_whole_unclipped_games(num_envs):
    from policygrad.core.envs import make_vec_env

    envs = make_vec_env("ALE/Breakout-v5", num_envs, training=True)
    assert envs.games
    envs.reset(seed=3)
    rng = np.random.default_rng(0)
    ends, games = 0, []
    while not games:
        _, _, terminated, truncated, valid = envs.step_arrays(rng.integers(0, 4, num_envs))
        ends += int(((terminated | truncated) & valid).sum())
        games = envs.pop_episodes()
    assert ends >= 5  # Breakout's 5 lives: each ends the learner's episode; the game goes on
    game = games[0]
    assert game.length > 50 and game.ret >= 0  # the whole game, in agent steps, with the game's score
    envs.close()
    evaluation = make_vec_env("ALE/Breakout-v5", 1)
    assert not evaluation.games
    evaluation.close()


@pytest.mark.slow
def test_ppo_trains_and_evaluates_whole_pong_games_from_the_command_line(tmp_path):
    """End to end with the preset, briefly: a run on ALE/Pong-v5 and its evaluation of one whole game (the
    game's score, -21 to 21). (Learning Pong is a benchmark, not a test: benchmarks/ATARI.md, to come.)"""
    import json

    from policygrad.cli import main

    run_dir = tmp_path / "pong"
    assert main(["train", "ppo", "--env", "ALE/Pong-v5", "--total-steps", "256", "--num-envs", "2",
                 "--num-steps", "32", "--eval-episodes", "1", "--run-dir", str(run_dir), "--progress", "false",
                 "--tensorboard", "false"]) == 0
    evaluation = json.loads((run_dir / "eval.json").read_text())
    assert len(evaluation["returns"]) == 1 and -21 <= evaluation["returns"][0] <= 21
    assert evaluation["lengths"][0] > 500  # a whole game, not one point


def test_the_games_state_is_saved_as_data_and_continues_the_same_frames():
    """vec_env_state captures each copy's emulator (ale-py's cloneState with the sticky-action generator)
    and frame stack as JSON data; restored into fresh copies reset elsewhere, the same actions give the
    same frames."""
    import json

    from policygrad.core.envs import make_vec_env
    from policygrad.run.snapshot import restore_vec_env_state, vec_env_state

    envs, other = make_vec_env("ALE/Pong-v5", 2, training=True), make_vec_env("ALE/Pong-v5", 2, training=True)
    envs.reset(seed=3)
    other.reset(seed=99)
    rng = np.random.default_rng(0)
    for _ in range(40):
        envs.step_arrays(rng.integers(0, 6, 2))
    state = json.loads(json.dumps(vec_env_state(envs)))
    assert state["unsupported"] == []
    actions = rng.integers(0, 6, (60, 2))
    expected = [envs.step_arrays(a)[0].copy() for a in actions]
    assert restore_vec_env_state(other, state)
    assert all(np.array_equal(a, other.step_arrays(b)[0]) for a, b in zip(expected, actions))
    envs.close()
    other.close()


@pytest.mark.slow  # ~15 s of CPU: two short Pong runs, each evaluated on one whole game
def test_an_atari_run_resumes_exactly_with_the_emulators_state(tmp_path):
    """The checkpoint holds each game's emulator state (ale-py's cloneState, sticky-action generator
    included) and the frame stack: resumed from its first checkpoint, the run ends with the parameters of
    the run that was never stopped (without them the games would restart and the weights differ)."""
    import shutil

    import policygrad as pg
    from policygrad.cli import main
    from policygrad.run.checkpoint import periodic_checkpoints

    cfg = pg.make_config("ppo", env_id="ALE/Pong-v5", total_steps=192, num_envs=2, num_steps=32, num_minibatches=2,
                         update_epochs=1, checkpoint_every=64, keep_checkpoints=5, eval_episodes=1, eval_every=0,
                         progress=False, tensorboard=False)
    straight = pg.train(cfg, run_dir=tmp_path / "straight")
    resumed = tmp_path / "resumed"
    shutil.copytree(straight.run_dir, resumed)
    first = periodic_checkpoints(resumed)[0]
    assert main(["resume", str(resumed), "--checkpoint", first.name]) == 0
    expected, loaded = straight.agent.network.state_dict(), pg.load(resumed).network.state_dict()
    for key in expected:
        assert torch.equal(expected[key], loaded[key]), key


@pytest.mark.slow  # two short Pong runs and their whole-game evaluations: minutes
def test_compare_runs_sb3_ppo_with_its_cnn_policy_on_the_same_pong_frames(tmp_path):
    pytest.importorskip("stable_baselines3", reason="the compare extra (pip install 'policygrad[compare]')")
    import json

    import policygrad as pg

    result = pg.compare("ALE/Pong-v5", "ppo,sb3:ppo", seeds=1, total_steps=1024, eval_every=1024, eval_episodes=1,
                        workers=1, out_dir=tmp_path, verbose=False)
    assert not result.failed
    spec = json.loads((result.study_dir / "study.json").read_text())
    assert spec["methods"]["sb3:ppo"]["hyperparameters"]["n_steps"] == 128  # the zoo's atari entry
    for row in result.results:  # whole games with the game's own score on both sides
        assert -21 <= float(row["final_eval"]) <= 21, row


def random_pong_scores(games: int, seed: int) -> list[float]:
    """Whole games of ALE/Pong-v5 (the evaluation stack: unclipped, no life loss) with uniform random
    actions, from the reset seeds ``seed, seed + 1, ...``."""
    env = make_atari_env("ALE/Pong-v5", training=False)
    env.action_space.seed(seed)
    scores = []
    for game in range(games):
        env.reset(seed=seed + game)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        scores.append(total)
    env.close()
    return scores


# Issue 29: a short Pong run plays better than random. The preset's 2M-step run of benchmarks/atari_pong.py
# (seed 1) averaged -20.3 over its first 50 training games (about random), -19.8 at 300k-400k steps, -17.0 at
# 500k-550k, -16.2 at 700k-800k (sampled actions, whole games); its deterministic evaluations were still -21.0
# at 200k and 400k (a greedy Pong policy repeats a losing move), so this compares sampled play, as the zoo
# scores Atari. The learning rate and the clip stay at the preset's starting values: annealed to 0 over a
# 700k-step budget, the same run learned far less (measured: -20.1 against random's -20.3 on these games),
# where the 2M-step run's first 700k steps anneal by only a third. Constant, seed 1 measured -16.1 against
# random's -20.3 (55 min on a shared core).
@pytest.mark.slow  # 700k steps: ~45 min of one idle core
def test_a_short_pong_run_plays_better_than_random(tmp_path):
    import policygrad as pg

    cfg = pg.make_config("ppo", env_id="ALE/Pong-v5", total_steps=700_000, seed=1, eval_episodes=1,
                         anneal_lr=False, anneal_clip=False, progress=False, tensorboard=False,
                         checkpoint_every=0)
    result = pg.train(cfg, run_dir=tmp_path / "pong")
    trained = pg.evaluate(result.agent, episodes=10, deterministic=False, seed=12345)
    random_play = random_pong_scores(10, seed=12345)
    print("pong after 700k:", trained.returns, "random:", random_play)  # for the note (pytest -s)
    assert all(-21 <= score <= 21 for score in [*trained.returns, *random_play])
    assert np.mean(trained.returns) >= np.mean(random_play) + 2.0, (trained.returns, random_play)
