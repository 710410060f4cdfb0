"""Frozen, validated configuration for every algorithm.

A config is a frozen dataclass and plain data. Every field carries a one-line help text in its
metadata (it becomes ``--help`` on the command line and the table of ``policygrad list``). Bad values
raise :class:`~policygrad.core.errors.UserInputError` (a ``ValueError``) naming the field, the value
and what is allowed, at construction, never deep inside training. Building a config checks values
and nothing else: whether its environment exists and fits, and whether its device exists, are
checked by ``make_config`` and ``train()`` (:mod:`policygrad.run.configure`). Derived values are
properties, not fields filled in later; the one field a config sets itself is REINFORCE's
``num_envs`` left at 0, once, while it is built (:class:`policygrad.algos.reinforce.ReinforceConfig`),
so that every way of building one follows the same rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, NoReturn

from policygrad.core.errors import UserInputError

ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu", "leaky_relu")
INIT_SCHEMES = ("orthogonal", "xavier", "kaiming", "torch-default")
DEVICES = ("auto", "cpu", "cuda", "mps")
ENCODERS = ("auto", "nature", "impala", "mlp")  # policygrad.core.encoders
IMAGE_LAYOUTS = ("auto", "chw", "hwc")  # policygrad.core.images


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field whose one-line ``help`` reaches ``--help`` and ``policygrad list``."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


def reject_value(name: str, value: Any, allowed: str) -> NoReturn:
    """Raise UserInputError ``NAME=VALUE is invalid: expected ALLOWED``: the one form of every refused
    field value, in configs and in the checks that need the environment (``make_config``)."""
    raise UserInputError(f"{name}={value!r} is invalid: expected {allowed}")


def did_you_mean(word: str, choices: list[str]) -> str:
    matches = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(matches)}?" if matches else ""


@dataclass(frozen=True)
class Config:
    """Fields shared by every algorithm. Each algorithm's config extends this one level."""

    env_id: str = option("CartPole-v1", "Gymnasium id, or 'module:Class' / 'module:make_fn' of your own env")
    total_steps: int = option(100_000, "environment steps to train for")
    seed: int = option(1, "the one seed every random number derives from")
    # cpu by default: on the MLPs this library builds, an H100 trained 0.35-0.42x as fast as one CPU core
    # on the CartPole and Pendulum presets and 0.91x at 64 envs x 256x256 (benchmarks/results/device_throughput.md).
    device: str = option("cpu", "cpu | cuda | mps | auto (auto: CUDA, then MPS, then CPU)")
    num_envs: int = option(8, "parallel copies of the environment, stepped as one vector env")
    hidden_sizes: tuple[int, ...] = option((64, 64), "widths of the hidden layers of each MLP")
    activation: str = option("tanh", "hidden activation: " + " | ".join(ACTIVATIONS))
    init: str = option("orthogonal", "weight init: " + " | ".join(INIT_SCHEMES))
    shared_trunk: bool = option(False, "policy and value share hidden layers (default: separate networks)")
    network: str = option("", "your own torch.nn.Module as 'module:Class', built as Class(observation_space, "
                          "action_space) (default: the built-in MLP; hidden_sizes, activation, init and "
                          "shared_trunk then do nothing)")
    encoder: str = option("auto", "the network's encoder: auto (nature for images, mlp otherwise) | nature (Mnih "
                          "et al. 2015 CNN, images of 36x36 and more) | impala (Espeholt et al. 2018 ResNet) | "
                          "mlp (hidden_sizes, activation); images: rank-3 Box of uint8 or of floats in [0, 1]")
    image_layout: str = option("auto", "axes of image observations: auto (the channel axis is the first or the last, "
                               "whichever is strictly smaller than the other two) | chw | hwc")
    distribution: str = option("auto", "action head for Box actions: gaussian | gaussian_state_std | tanh | "
                               "beta | gsde (state-dependent exploration noise; auto: gaussian; discrete "
                               "spaces pick theirs)")
    log_std_init: float = option(0.0, "initial log std of Gaussian and tanh heads (0: std 1; -1: std 0.37; "
                                 "state-dependent std: the output's starting bias; beta and your own "
                                 "network's state-dependent std ignore it)")
    sde_sample_freq: int = option(-1, "distribution=gsde: environment steps between new exploration matrices "
                                  "(-1: one per rollout, drawn when it starts)")
    normalize_obs: bool = option(False, "standardise observations with running statistics (saved, frozen at eval)")
    reward_norm: str = option("none", "none | scale (by running std of the discounted return) | standardize "
                              "(returns/advantages per batch) | popart (normalized value targets)")
    learning_rate: float = option(3e-4, "Adam step size")
    gamma: float = option(0.99, "discount factor in [0, 1]")
    ent_coef: float = option(0.0, "weight of the entropy bonus")
    vf_coef: float = option(0.5, "weight of the value loss")
    max_grad_norm: float = option(0.5, "clip the global gradient norm to this (0: no clipping)")
    torch_threads: int = option(1, "torch CPU threads (1 is fastest for small networks)")
    eval_episodes: int = option(20, "episodes of the deterministic evaluation at the end of training")
    eval_every: int = option(0, "environment steps between deterministic evaluations during training, each "
                             "a row of RUN_DIR/evals.csv (also at step 0 and the last step; 0: only the final one)")
    eval_seed: int = option(10_000, "the evaluations' environment copies reset from seeds eval_seed, eval_seed+1, "
                            "...: the same for every run, so curves of different settings and seeds compare")
    run_dir: str = option("", "where the run is written (default: runs/ENV__ALGO__SEED__TIME)")
    checkpoint_every: int = option(100_000, "environment steps between resumable checkpoints in "
                                   "RUN_DIR/checkpoints/ (0: only the final one)")
    keep_checkpoints: int = option(3, "periodic checkpoints kept (the oldest are deleted)")
    max_nonfinite_updates: int = option(3, "stop the run after this many updates in a row whose loss or "
                                        "gradient was NaN/inf (each one is skipped)")
    tensorboard: bool = option(True, "write TensorBoard event files")
    progress: bool = option(True, "show a progress bar")
    preset: str = option("none", "tuned values applied under yours: auto (the env's, if any) | none | an env id "
                         "| a file PATH.yaml of field: value")

    # The algorithm's name in the registry; set by each subclass, never by the user.
    algo: str = field(default="", init=False, metadata={"help": "algorithm", "internal": True})

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            reject_value("env_id", self.env_id, "a Gymnasium id such as 'CartPole-v1' or 'module:Class'")
        self._positive_int("total_steps", "num_envs", "torch_threads", "eval_episodes", "keep_checkpoints",
                           "max_nonfinite_updates")
        if (not isinstance(self.checkpoint_every, int) or isinstance(self.checkpoint_every, bool)
                or self.checkpoint_every < 0):
            reject_value("checkpoint_every", self.checkpoint_every, "an integer >= 0 (0: only the final checkpoint)")
        if (not isinstance(self.eval_every, int) or isinstance(self.eval_every, bool)
                or self.eval_every < 0):
            reject_value("eval_every", self.eval_every, "an integer >= 0 (0: only the final evaluation)")
        for name in ("seed", "eval_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                reject_value(name, value, "an integer >= 0")
        self._choice("device", DEVICES)
        module_name, _, attr = self.network.partition(":") if isinstance(self.network, str) else ("", "", "")
        if not isinstance(self.network, str) or (self.network and not (module_name and attr)):
            reject_value("network", self.network, "'' (the built-in MLP) or 'module:Class', e.g. 'my_nets:ConvPolicy'")
        self._choice("activation", ACTIVATIONS)
        self._choice("encoder", ENCODERS)
        self._choice("image_layout", IMAGE_LAYOUTS)
        self._choice("init", INIT_SCHEMES)
        self._choice("reward_norm", ("none", "scale", "standardize", "popart"))
        # Type checks first: a string or a bare int must be a UserInputError naming the field, not a
        # TypeError from the comparison or the iteration below.
        if not isinstance(self.hidden_sizes, (tuple, list)) or not self.hidden_sizes or any(
                not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in self.hidden_sizes):
            reject_value("hidden_sizes", self.hidden_sizes, "one or more positive integers, e.g. (64, 64)")
        if (not isinstance(self.learning_rate, (int, float)) or isinstance(self.learning_rate, bool)
                or not self.learning_rate > 0):
            reject_value("learning_rate", self.learning_rate, "a number > 0")
        self._in_unit_interval("gamma")
        self._non_negative("ent_coef", "vf_coef", "max_grad_norm")
        from policygrad.core.distributions import LOG_STD_MAX, LOG_STD_MIN

        if (not isinstance(self.log_std_init, (int, float)) or isinstance(self.log_std_init, bool)
                or not LOG_STD_MIN <= self.log_std_init <= LOG_STD_MAX):
            reject_value("log_std_init", self.log_std_init, f"a number in [{LOG_STD_MIN}, {LOG_STD_MAX}]")
        if (not isinstance(self.sde_sample_freq, int) or isinstance(self.sde_sample_freq, bool)
                or not (self.sde_sample_freq == -1 or self.sde_sample_freq >= 1)):
            reject_value("sde_sample_freq", self.sde_sample_freq, "-1 (once per rollout) or an integer >= 1")

    # -- helpers for subclasses -------------------------------------------------------------------
    def _positive_int(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                reject_value(name, value, "an integer > 0")

    def _non_negative(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
                reject_value(name, value, "a finite number >= 0")

    def _in_unit_interval(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                reject_value(name, value, "a number in [0, 1]")

    def _choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            reject_value(name, value, "one of " + " | ".join(allowed))

    # -- public -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every resolved field, JSON-ready (tuples become lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied and validated (unknown names raise UserInputError)."""
        check_field_names(type(self), changes)
        return dataclasses.replace(self, **changes)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def user_fields(config_cls: type[Config]) -> list[dataclasses.Field]:
    """The fields a user may set (the internal ``algo`` tag excluded)."""
    return [f for f in dataclasses.fields(config_cls) if f.init and not f.metadata.get("internal")]


def check_field_names(config_cls: type[Config], values: dict[str, Any]) -> None:
    """Raise UserInputError naming any key of ``values`` that is not a field of ``config_cls``."""
    names = [f.name for f in user_fields(config_cls)]
    for key in values:
        if key not in names:
            raise UserInputError(
                f"{key!r} is not a field of {config_cls.__name__}.{did_you_mean(key, names)}"
                " (policygrad list shows them all)"
            )


def coerce_field_values(config_cls: type[Config], values: dict[str, Any]) -> dict[str, Any]:
    """Turn JSON / YAML values into the field types (lists into tuples), rejecting unknown keys."""
    check_field_names(config_cls, values)
    out = {}
    for f in user_fields(config_cls):
        if f.name in values:
            value = values[f.name]
            if "tuple" in str(f.type) and isinstance(value, list):
                value = tuple(value)
            if "float" in str(f.type) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            out[f.name] = value
    return out
