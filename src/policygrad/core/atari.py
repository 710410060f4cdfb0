"""Atari: the standard preprocessing (Mnih et al. 2015; Machado et al. 2018), built from Gymnasium's own
wrappers, for the ``ALE/...-v5`` and ``...NoFrameskip-v4`` ids of ale-py (the ``atari`` extra; its wheel
ships the ROMs, so ``ALE/Pong-v5`` works offline after ``pip install 'policygrad[atari]'``).

The stack, bottom to top (:func:`make_atari_env`):

1. the game with frame skip 1 (v5 keeps its sticky actions, ``repeat_action_probability=0.25``;
   NoFrameskip-v4 has none): the skip is the next wrapper's, which max-pools the last two frames;
   with ``training``, :class:`GameRecord` notes the game's own score under everything that changes it;
2. ``AtariPreprocessing``: up to 30 no-op actions at reset (varied starts), frame skip 4, 84x84
   greyscale, uint8 (never scaled: the network scales);
3. with ``training``, :class:`LifeLossEndsEpisode`: a lost life ends the learner's episode (the value of
   a lost life is 0, as in the DQN and PPO papers) while the game goes on (baselines' and SB3's
   ``EpisodicLifeEnv``; Gymnasium's own ``terminal_on_life_loss`` restarts the whole game instead, so a
   learner would never see a second life);
4. :class:`FireOnReset` for games that wait for FIRE (Breakout), after every reset (a lost life included);
5. with ``training``, rewards clipped to their sign (-1, 0, 1: one scale of step size for every game);
6. ``FrameStackObservation(4)``: the last 4 frames, ``(4, 84, 84)`` uint8, channels first by the
   image rule of :mod:`policygrad.core.images`;
7. with ``training``, :class:`GameLength` counts the agent's steps of each whole game.

Life loss and clipping are for training only: an evaluation plays whole games and reports the game's
own score (``training=False``). In the training form, the step that ends a whole game carries
``info["game_score"]`` (unclipped) and ``info["game_length"]`` (agent steps): what a learning curve reports
(:class:`policygrad.core.envs.VecEnv` records those games instead of the learner's episodes).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from policygrad.core.errors import UserInputError

FRAME_STACK = 4
SCREEN = 84


def is_atari_id(env_id: str) -> bool:
    """Whether ``env_id`` names an ale-py game: ``ALE/Name-v5`` or ``NameNoFrameskip-v4``."""
    return isinstance(env_id, str) and (env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4"))


def register_atari() -> None:
    """Register ale-py's ids with Gymnasium; UserInputError naming the extra when ale-py is missing."""
    try:
        import ale_py
    except ImportError:
        raise UserInputError("Atari environments need ale-py: pip install 'policygrad[atari]'") from None
    gym.register_envs(ale_py)


class FireOnReset(gym.Wrapper):
    """Press FIRE after every reset in games whose action set has it as action 1 (they wait for it to
    start, e.g. Breakout); as SB3's ``FireResetEnv`` and CleanRL's ``FireResetEnv``."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info


class GameRecord(gym.Wrapper):
    """Sums the game's own rewards over a whole game, lives and resets of the learner's episodes
    included, and puts the total into ``info["game_score"]`` on the step the game ends."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.score = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.score = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.score += float(reward)
        if terminated or truncated:
            info = {**info, "game_score": self.score}
        return obs, reward, terminated, truncated, info


class LifeLossEndsEpisode(gym.Wrapper):
    """A lost life ends the episode for the learner; the game goes on: the reset that follows takes one
    no-op step instead of restarting the game, unless the game is over (baselines' ``EpisodicLifeEnv``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:  # the no-op ended the game: a real reset after all
                obs, info = self.env.reset(**kwargs)
        self.game_over = False
        self.lives = self.env.unwrapped.ale.lives()  # type: ignore[attr-defined]
        return obs, info


class GameLength(gym.Wrapper):
    """Counts the agent's steps since the game began and puts the count into ``info["game_length"]``
    on the step that carries ``info["game_score"]`` (the game's end)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if "game_score" in info:
            info = {**info, "game_length": self.steps}
            self.steps = 0
        return obs, reward, terminated, truncated, info


def sign(reward: Any) -> float:
    """-1, 0 or 1: the clipped reward of Mnih et al. 2015."""
    return float(np.sign(float(reward)))


def needs_fire(env: gym.Env) -> bool:
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def make_atari_env(env_id: str, training: bool = True, noop_max: int = 30, **kwargs: Any) -> gym.Env:
    """One Atari game with the standard preprocessing above; ``training`` adds life loss as episode end,
    reward clipping and the whole game's record in ``info``. ``kwargs`` go to ``gym.make`` (``render_mode``,
    ``repeat_action_probability``)."""
    if not is_atari_id(env_id):
        raise UserInputError(f"env_id={env_id!r} is not an Atari id: expected 'ALE/Name-v5' or 'NameNoFrameskip-v4'")
    register_atari()
    # The game's own observation is never read: AtariPreprocessing takes the two frames it pools from the
    # emulator's grey screen. A grey observation of every frame is a third of an RGB one to copy out (the
    # stack steps 1.09x faster, benchmarks/results/atari_vector_env.md); frames and videos are the same.
    kwargs.setdefault("obs_type", "grayscale")
    env = gym.make(env_id, frameskip=1, **kwargs)
    if training:
        env = GameRecord(env)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=4, screen_size=SCREEN,
                                          terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)
    if training:
        env = LifeLossEndsEpisode(env)
    if needs_fire(env):
        env = FireOnReset(env)
    if training:
        env = gym.wrappers.TransformReward(env, sign)
    env = gym.wrappers.FrameStackObservation(env, FRAME_STACK)
    return GameLength(env) if training else env
