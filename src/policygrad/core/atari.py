"""Atari: the standard preprocessing (Mnih et al. 2015; Machado et al. 2018), built from Gymnasium's own
wrappers, for the ``ALE/...-v5`` and ``...NoFrameskip-v4`` ids of ale-py (the ``atari`` extra; its wheel
ships the ROMs, so ``ALE/Pong-v5`` works offline after ``pip install 'policygrad[atari]'``).

The stack, bottom to top (:func:`make_atari_env`):

1. the game with frame skip 1 (v5 keeps its sticky actions, ``repeat_action_probability=0.25``;
   NoFrameskip-v4 has none): the skip is the next wrapper's, which max-pools the last two frames;
2. ``AtariPreprocessing``: up to 30 no-op actions at reset (varied starts), frame skip 4, 84x84
   greyscale, uint8 (never scaled: the network scales); with ``training``, the loss of a life ends the
   episode (``terminal_on_life_loss``: the value of a lost life is 0, as in the DQN and PPO papers);
3. :class:`FireOnReset` for games that wait for FIRE (Breakout), after every reset;
4. with ``training``, rewards clipped to their sign (-1, 0, 1: one scale of step size for every game);
5. ``FrameStackObservation(4)``: the last 4 frames, ``(4, 84, 84)`` uint8, channels first by the
   image rule of :mod:`policygrad.core.images`.

Life loss and clipping are for training only: an evaluation plays whole games and reports the game's
own score (``training=False``). Not yet wired: the training run's own curve still counts what the
training environment returns (clipped rewards per life); see the guide's "Learning from pixels".
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


def sign(reward: Any) -> float:
    """-1, 0 or 1: the clipped reward of Mnih et al. 2015."""
    return float(np.sign(float(reward)))


def needs_fire(env: gym.Env) -> bool:
    meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def make_atari_env(env_id: str, training: bool = True, noop_max: int = 30, **kwargs: Any) -> gym.Env:
    """One Atari game with the standard preprocessing above; ``training`` adds life loss as episode end
    and reward clipping. ``kwargs`` go to ``gym.make`` (``render_mode``, ``repeat_action_probability``)."""
    if not is_atari_id(env_id):
        raise UserInputError(f"env_id={env_id!r} is not an Atari id: expected 'ALE/Name-v5' or 'NameNoFrameskip-v4'")
    register_atari()
    env = gym.make(env_id, frameskip=1, **kwargs)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=4, screen_size=SCREEN,
                                          terminal_on_life_loss=training, grayscale_obs=True, scale_obs=False)
    if needs_fire(env):
        env = FireOnReset(env)
    if training:
        env = gym.wrappers.TransformReward(env, sign)
    return gym.wrappers.FrameStackObservation(env, FRAME_STACK)
