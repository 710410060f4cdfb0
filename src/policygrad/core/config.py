"""Frozen, validated configuration for every algorithm.

A config is a frozen dataclass and plain data. Every field carries a one-line help text in its
metadata (it becomes ``--help`` on the command line, the table of ``policygrad list`` and the class's
docstring: ``help(pg.PPOConfig)``). Every field's type is checked from its annotation first: a wrong
type raises :class:`UserTypeError` (a ``TypeError``, and a ``UserInputError`` for the command line;
no truthiness for bools, an int is fine for a float), then bad values raise
:class:`~policygrad.core.errors.UserInputError` (a ``ValueError``) naming the field, the value and
what is allowed, at construction, never deep inside training. A config class applies no preset
(``make_config`` does, :func:`applying_preset`). Building a config checks values
and nothing else: whether its environment exists and fits, and whether its device exists, are
checked by ``make_config`` and ``train()`` (:mod:`policygrad.run.configure`). Derived values are
properties, not fields filled in later; the one field a config sets itself is REINFORCE's
``num_envs`` left at 0, once, while it is built (:class:`policygrad.algos.reinforce.ReinforceConfig`),
so that every way of building one follows the same rule.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import importlib
import math
import numbers
import os
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np

from policygrad.core.errors import UserInputError

ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu", "leaky_relu")
INIT_SCHEMES = ("orthogonal", "xavier", "kaiming", "torch-default")
DEVICES = ("auto", "cpu", "cuda", "mps")
ENCODERS = ("auto", "nature", "impala", "mlp")  # policygrad.core.encoders
IMAGE_LAYOUTS = ("auto", "chw", "hwc")  # policygrad.core.images
PRECISIONS = ("fp32", "bf16")  # policygrad.core.precision


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field whose one-line ``help`` reaches ``--help`` and ``policygrad list``."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


def reject_value(name: str, value: Any, allowed: str) -> NoReturn:
    """Raise UserInputError ``NAME=VALUE is invalid: expected ALLOWED``: the one form of every refused
    field value, in configs and in the checks that need the environment (``make_config``)."""
    raise UserInputError(f"{name}={value!r} is invalid: expected {allowed}")


class UserTypeError(UserInputError, TypeError):
    """A value of the wrong type, or a keyword that is not a field: a ``TypeError`` for Python callers
    (as Python's own calls raise), and a :class:`UserInputError` (exit code 2, one line) for the command
    line. The message names the field, the value and the type expected."""


def reject_type(name: str, value: Any, expected: str) -> NoReturn:
    """Raise UserTypeError ``NAME=VALUE is invalid: expected a value of type T, not U``."""
    raise UserTypeError(f"{name}={value!r} is invalid: expected a value of type {expected}, "
                        f"not {type(value).__name__}")


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (no truthiness: ``"no"`` or ``1`` is a UserTypeError naming ``name``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    reject_type(name, value, "bool (True or False)")


def check_int(name: str, value: Any) -> int:
    """``value`` as an int (numpy integers too; a bool or a float is a UserTypeError naming ``name``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    reject_type(name, value, "int (an integer)")


def check_float(name: str, value: Any) -> float | int:
    """``value`` if it is a real number (an int is fine; a bool, a string or None is a UserTypeError)."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_, numbers.Integral)):
        return value if type(value) is float else float(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    reject_type(name, value, "float (a number; an int will do)")


def check_json_mapping(name: str, value: Any) -> None:
    """UserInputError unless ``value`` is a dict of str keys to JSON values (str, int, float, bool, None,
    lists and dicts of them): what config.json can record and read back as it was."""
    def ok(v: Any) -> bool:
        if v is None or isinstance(v, (str, bool, int)):
            return True
        if isinstance(v, float):
            return math.isfinite(v)
        if isinstance(v, list):
            return all(ok(x) for x in v)
        if isinstance(v, dict):
            return all(isinstance(k, str) and ok(x) for k, x in v.items())
        return False

    if not isinstance(value, dict) or not ok(value):
        reject_value(name, value, "a dict of str keys to JSON values (str, int, float, bool, None, lists and dicts "
                     "of them), e.g. {'continuous': True}")


def _check_field_type(name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the field's type ``hint`` (numpy scalars become Python ones)."""
    kind = type(value)
    if kind is hint and kind is not dict or hint is float and kind is int:  # the common case, fast
        return value
    if hint is bool:
        return check_bool(name, value)
    if hint is int:
        return check_int(name, value)
    if hint is float:
        return check_float(name, value)
    if hint is str:
        if not isinstance(value, str):
            reject_type(name, value, "str")
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if not isinstance(value, (tuple, list)):
            reject_type(name, value, f"tuple of {args[0].__name__}")
        try:
            return tuple(_check_field_type(name, args[0], v) for v in value)
        except UserTypeError:
            bad = next(v for v in value if not isinstance(v, args[0]) or isinstance(v, bool))
            raise UserTypeError(f"{name}={value!r} is invalid: expected a value of type tuple of "
                                f"{args[0].__name__}, not one holding {type(bad).__name__} {bad!r}") from None
    if origin is dict or hint is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            reject_type(name, value, "dict with str keys")
        return dict(value)  # a copy: the caller's dict changed later does not change the config
    return value  # a type this check does not know: the field's own validation decides


_FIELD_TYPES: dict[type, dict[str, Any]] = {}
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(config_cls: type[Config]) -> tuple[str, ...]:
    """The names of ``config_cls``'s user fields, in order, cached per class."""
    if config_cls not in _FIELD_NAMES:
        _FIELD_NAMES[config_cls] = tuple(f.name for f in user_fields(config_cls))
    return _FIELD_NAMES[config_cls]


def field_types(config_cls: type) -> dict[str, Any]:
    """The resolved annotations of ``config_cls``'s fields (``from __future__ import annotations``
    makes them strings), cached per class."""
    if config_cls not in _FIELD_TYPES:
        _FIELD_TYPES[config_cls] = typing.get_type_hints(config_cls)
    return _FIELD_TYPES[config_cls]


# Set while make_config builds a config from a preset: only then may a config class be given a preset
# other than "none" (a config class applies no preset itself; what ``preset`` records was applied).
_APPLYING_PRESET: contextvars.ContextVar[bool] = contextvars.ContextVar("applying_preset", default=False)


@contextlib.contextmanager
def applying_preset() -> Iterator[None]:
    """The context in which ``make_config`` builds a config whose preset it has applied."""
    token = _APPLYING_PRESET.set(True)
    try:
        yield
    finally:
        _APPLYING_PRESET.reset(token)


def import_user_module(name: str) -> Any:
    """Import the module of a ``module:Class`` name the way ``python`` itself would find it: also from
    the current directory, which a console script (``policygrad ...``) does not put on ``sys.path``.
    The directory is appended to ``sys.path`` (installed modules keep precedence) and stays there, so
    that the worker processes a run spawns find the module too. An ImportError raised inside the
    module (a module it imports is missing) goes up as it is."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = name.split(".")[0]
        cwd = os.getcwd()
        if exc.name not in (top, name) or cwd in {os.path.abspath(p or os.curdir) for p in sys.path}:
            raise
    sys.path.append(cwd)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def did_you_mean(word: str, choices: list[str]) -> str:
    matches = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(matches)}?" if matches else ""


@dataclass(frozen=True)
class Config:
    """Fields shared by every algorithm. Each algorithm's config extends this one level."""

    env_id: str = option("CartPole-v1", "Gymnasium id, or 'module:Class' / 'module:make_fn' of your own env")
    env_kwargs: dict[str, Any] = field(
        default_factory=dict, hash=False,
        metadata={"help": "keyword arguments for the environment (gymnasium.make(env_id, **env_kwargs)), JSON values; "
                          "training, evaluations, videos, studies and resumed runs use them (not A3C yet)"})
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
    precision: str = option("fp32", "arithmetic of the convolutional encoder's forward passes (images only): fp32 | "
                            "bf16 (bfloat16 autocast: PPO and A2C on Pong 1.3-1.4x faster on a CPU with AVX-512 "
                            "BF16, slower without native bf16; heads, losses, parameters and checkpoints stay fp32)")
    recurrent: str = option("none", "memory between encoder and heads: none | lstm | gru (ppo, a2c, a3c; the state "
                            "is reset at every episode start; actor and critic each have one unless shared_trunk)")
    recurrent_size: int = option(64, "units of the recurrent core (recurrent=lstm | gru)")
    recurrent_layers: int = option(1, "stacked layers of the recurrent core (recurrent=lstm | gru)")
    post_core_sizes: tuple[int, ...] = option((), "widths of hidden layers between the recurrent core and the heads "
                                              "(SB3-contrib's net_arch; activation as hidden_sizes); without a core "
                                              "(recurrent=none) they follow hidden_sizes in one MLP")
    distribution: str = option("auto", "action head for Box actions: gaussian | gaussian_state_std | tanh | "
                               "beta | gsde (state-dependent exploration noise; auto: gaussian; discrete "
                               "spaces pick theirs)")
    log_std_init: float = option(0.0, "initial log std of Gaussian and tanh heads (0: std 1; -1: std 0.37; "
                                 "state-dependent std: the output's starting bias; beta and your own "
                                 "network's state-dependent std ignore it)")
    sde_sample_freq: int = option(-1, "distribution=gsde: environment steps between new exploration matrices "
                                  "(-1: one per rollout, drawn when it starts)")
    normalize_obs: bool = option(False, "standardise observations with running statistics (saved, frozen at eval; "
                                 "Dict/Tuple observations: per Box part that is not an image)")
    action_masking: str = option("auto", "auto (Discrete/MultiDiscrete actions obey the masks the environment gives: "
                                 "info['action_mask'], an 'action_mask' key of a Dict observation, or an "
                                 "action_masks() method) | off (ignore them, e.g. to measure what they are worth)")
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

    def __new__(cls, *args: Any, **kwargs: Any) -> Config:
        # One rule for presets: a config class applies none. ``preset`` records what make_config applied,
        # so a class given another preset by hand refuses it, unless every field is given (a copy of a
        # config make_config built: dataclasses.replace, a record read back).
        preset = kwargs.get("preset", "none")
        names = _field_names(cls)
        complete = len(args) + len(kwargs) >= len(names)
        if preset != "none" and isinstance(preset, str) and not complete and not _APPLYING_PRESET.get():
            algo = cls.__dataclass_fields__["algo"].default
            raise UserInputError(
                f"preset={preset!r}: a config class applies no preset (it would record one it did not apply); "
                f"use pg.make_config({algo!r}, preset={preset!r}, ...), which applies it under your values, "
                "or leave preset='none' for the class's own defaults")
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            check_field_names(cls, {k: None for k in unknown})
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every field's type is checked before any value check, whichever class's __post_init__ runs first.
        super().__init_subclass__(**kwargs)
        cls.__doc__ = document_fields(cls)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_checks_types", False):
            def __post_init__(self: Config) -> None:
                if type(self).__post_init__ is __post_init__:  # the outermost: check once per config
                    self._check_types()
                own(self)

            __post_init__._checks_types = True  # type: ignore[attr-defined]
            __post_init__.__doc__ = own.__doc__
            cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def _check_types(self) -> None:
        """Raise UserTypeError (a TypeError) for a field whose value has the wrong type."""
        hints = field_types(type(self))
        for name in _field_names(type(self)):
            value = getattr(self, name)
            checked = _check_field_type(name, hints[name], value)
            if checked is not value:
                object.__setattr__(self, name, checked)  # frozen: numpy scalars become Python ones

    def __post_init__(self) -> None:
        if type(self).__post_init__ is Config.__post_init__:  # else a subclass's wrapper checked them
            self._check_types()
        if not isinstance(self.env_id, str) or not self.env_id:
            reject_value("env_id", self.env_id, "a Gymnasium id such as 'CartPole-v1' or 'module:Class'")
        check_json_mapping("env_kwargs", self.env_kwargs)
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
        self._choice("precision", PRECISIONS)
        self._choice("action_masking", ("auto", "off"))
        self._choice("init", INIT_SCHEMES)
        self._choice("reward_norm", ("none", "scale", "standardize", "popart"))
        self._choice("recurrent", ("none", "lstm", "gru"))
        self._positive_int("recurrent_size", "recurrent_layers")
        # Type checks first: a string or a bare int must be a UserInputError naming the field, not a
        # TypeError from the comparison or the iteration below.
        # hidden_sizes may be empty where something else reads the observation: a recurrent core
        # (SB3-contrib's layout), or, feed-forward, the layers of post_core_sizes (mlp_sizes).
        if not isinstance(self.post_core_sizes, (tuple, list)) or any(
                not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in self.post_core_sizes):
            reject_value("post_core_sizes", self.post_core_sizes, "zero or more positive integers, e.g. (64,)")
        if not isinstance(self.hidden_sizes, (tuple, list)) or any(
                not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in self.hidden_sizes) or not (
                self.hidden_sizes or self.recurrent != "none" or self.post_core_sizes):
            reject_value("hidden_sizes", self.hidden_sizes, "one or more positive integers, e.g. (64, 64) (empty only "
                         "with recurrent=lstm | gru or post_core_sizes)")
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


def document_fields(cls: type) -> str:
    """``cls``'s docstring followed by a line per user field (name, type, default, help), from the
    fields' metadata, so that ``help(pg.PPOConfig)`` lists them. Runs before ``@dataclass`` processes
    a subclass: its own fields are still the ``Field`` objects of its body, the inherited ones its bases'."""
    fields: dict[str, dataclasses.Field] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(getattr(base, "__dataclass_fields__", {}))
    fields.update(vars(cls).get("__dataclass_fields__", {}))  # Config itself, documented once decorated
    fields.update({name: value for name, value in vars(cls).items() if isinstance(value, dataclasses.Field)})
    annotations: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        annotations.update(vars(klass).get("__annotations__", {}))
    lines = []
    for name, f in fields.items():
        if not f.init or f.metadata.get("internal") or "help" not in f.metadata:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        kind = annotations.get(name, "")
        kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
        lines.append(f"    {name} ({kind}, default {default!r}): {f.metadata['help']}")
    doc = (vars(cls).get("__doc__") or f"{cls.__name__}: the {cls.__name__.removesuffix('Config')} "
           "algorithm's configuration.").strip()
    return f"{doc}\n\nFields (wrong types raise TypeError, bad values ValueError):\n\n" + "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


Config.__doc__ = document_fields(Config)


def user_fields(config_cls: type[Config]) -> list[dataclasses.Field]:
    """The fields a user may set (the internal ``algo`` tag excluded)."""
    return [f for f in dataclasses.fields(config_cls) if f.init and not f.metadata.get("internal")]


def check_field_names(config_cls: type[Config], values: dict[str, Any]) -> None:
    """Raise UserInputError naming any key of ``values`` that is not a field of ``config_cls``."""
    names = [f.name for f in user_fields(config_cls)]
    for key in values:
        if key not in names:
            raise UserTypeError(
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
