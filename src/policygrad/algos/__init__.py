"""The algorithms, by the name the command line and configs use.

Each is an :class:`~policygrad.algos.base.Algorithm` (synchronous: the trainer drives it) or an
:class:`~policygrad.algos.base.AsynchronousAlgorithm` (it owns its loop); see docs/architecture.md.
"""

from __future__ import annotations

import difflib

from policygrad.algos.a2c import A2C
from policygrad.algos.a3c import A3C
from policygrad.algos.actor_critic import OneStepActorCritic
from policygrad.algos.base import Algorithm, AsynchronousAlgorithm
from policygrad.algos.ppo import PPO
from policygrad.algos.reinforce import Reinforce
from policygrad.core.errors import UserInputError

AlgorithmClass = type[Algorithm] | type[AsynchronousAlgorithm]

ALGORITHMS: dict[str, AlgorithmClass] = {
    "reinforce": Reinforce,
    "actor_critic": OneStepActorCritic,
    "a2c": A2C,
    "a3c": A3C,
    "ppo": PPO,
}


def algorithm(name: str) -> AlgorithmClass:
    """The algorithm class called ``name``; UserInputError naming the known ones otherwise."""
    if name not in ALGORITHMS:
        close = difflib.get_close_matches(str(name), list(ALGORITHMS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UserInputError(f"algo={name!r} is not an algorithm: expected one of {' | '.join(ALGORITHMS)}.{hint}")
    return ALGORITHMS[name]
