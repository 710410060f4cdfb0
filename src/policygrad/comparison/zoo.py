"""RL Baselines3 Zoo's published hyperparameters for the SB3 methods of ``policygrad compare``
(https://github.com/DLR-RM/rl-baselines3-zoo, ``hyperparams/ALGO.yml``), for CartPole-v1,
Pendulum-v1 and the Atari games (the zoo's ``atari`` entries). Values are copied as the zoo writes them,
with three changes made everywhere: ``n_timesteps`` is dropped (a comparison gives every method the same
budget), ``policy`` is ``MlpPolicy`` for vectors and ``CnnPolicy`` for images (the zoo's ``env_wrapper``
AtariWrapper is policygrad's own preprocessing, core/atari.py, which both sides get), and ``normalize``
(VecNormalize) is not applied (noted where the zoo sets it).
``lin_X`` is a linear schedule from X to 0, as in the zoo. Other environments: SB3's defaults, noted.
"""

from __future__ import annotations

from typing import Any

from policygrad.core.atari import is_atari_id

# hyperparams/ppo.yml and a2c.yml, "atari" (every Atari game; the zoo stacks 4 frames, as core/atari.py does)
ATARI: dict[str, dict[str, Any]] = {
    "ppo": {"n_envs": 8, "n_steps": 128, "n_epochs": 4, "batch_size": 256, "learning_rate": "lin_2.5e-4",
            "clip_range": "lin_0.1", "vf_coef": 0.5, "ent_coef": 0.01},
    "a2c": {"n_envs": 16, "ent_coef": 0.01, "vf_coef": 0.25},
}
ATARI_NOTES = {"a2c": "the zoo's a2c atari entry uses RMSpropTFLike (eps 1e-5), which a JSON spec cannot name: "
                      "SB3's own RMSprop with its eps 1e-5 here"}

ZOO: dict[str, dict[str, dict[str, Any]]] = {
    "dqn": {
        # hyperparams/dqn.yml, CartPole-v1 ("Almost Tuned")
        "CartPole-v1": {"learning_rate": 2.5e-4, "batch_size": 512, "buffer_size": 100_000, "learning_starts": 0,
                        "gamma": 0.99, "target_update_interval": 5000, "train_freq": 16, "gradient_steps": 4,
                        "exploration_fraction": 0.06, "exploration_final_eps": 0.11},
    },
    "ppo": {
        # hyperparams/ppo.yml, CartPole-v1 ("Tuned")
        "CartPole-v1": {"n_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98,
                        "n_epochs": 20, "ent_coef": 0.0, "learning_rate": "lin_0.001", "clip_range": "lin_0.2"},
        # hyperparams/ppo.yml, Pendulum-v1 ("Tuned")
        "Pendulum-v1": {"n_envs": 4, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10,
                        "ent_coef": 0.0, "learning_rate": 1e-3, "clip_range": 0.2, "use_sde": True,
                        "sde_sample_freq": 4},
    },
    "a2c": {
        # hyperparams/a2c.yml, CartPole-v1
        "CartPole-v1": {"n_envs": 8, "ent_coef": 0.0},
        # hyperparams/a2c.yml, Pendulum-v0 ("Almost tuned"; the zoo's entry for the v0 of Pendulum; it sets
        # normalize: True, not applied here)
        "Pendulum-v1": {"n_envs": 8, "ent_coef": 0.0, "max_grad_norm": 0.5, "n_steps": 8, "gae_lambda": 0.9,
                        "vf_coef": 0.4, "gamma": 0.99, "use_rms_prop": True, "normalize_advantage": False,
                        "learning_rate": "lin_7e-4", "use_sde": True,
                        "policy_kwargs": {"log_std_init": -2, "ortho_init": False}},
    },
    "sac": {
        # hyperparams/sac.yml, Pendulum-v1
        "Pendulum-v1": {"learning_rate": 1e-3},
    },
    "td3": {
        # hyperparams/td3.yml, Pendulum-v0 (the zoo's entry for the v0 of Pendulum)
        "Pendulum-v1": {"noise_type": "normal", "noise_std": 0.1, "learning_starts": 1000},
    },
}

NOTES = {("a2c", "Pendulum-v1"): "the zoo's a2c Pendulum entry also sets normalize: True (VecNormalize), not "
                                 "applied here"}


def zoo_settings(algo: str, env_id: str) -> tuple[dict[str, Any], str]:
    """``(hyperparameters, where they come from)`` for SB3's ``algo`` on ``env_id``."""
    if is_atari_id(env_id) and algo in ATARI:
        note = ATARI_NOTES.get(algo)
        return dict(ATARI[algo]), f"RL Baselines3 Zoo hyperparams/{algo}.yml, atari" + (f" ({note})" if note else "")
    table = ZOO.get(algo, {})
    if env_id in table:
        note = NOTES.get((algo, env_id))
        return dict(table[env_id]), f"RL Baselines3 Zoo hyperparams/{algo}.yml" + (f" ({note})" if note else "")
    return {}, f"SB3 defaults: RL Baselines3 Zoo has no {algo} entry for {env_id} in policygrad's table"
