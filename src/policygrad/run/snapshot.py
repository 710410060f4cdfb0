"""Plain-data snapshots for checkpoints: random-number states and environment state as tagged JSON.

Exact resume needs more than weights: the Python, NumPy and torch generators, and the state of every
environment copy (its ``np_random``, its physics, its time-limit counter, the vector env's autoreset
flags). This module captures those as data and puts them back, without pickle:

- :func:`encode` / :func:`decode` turn numbers, strings, NumPy arrays and scalars, tuples, lists, dicts
  and NumPy / Python generators into JSON and back. A numeric array of more than
  :data:`LIST_LIMIT` elements is stored as base64 of its bytes, not as a list of numbers: an Atari run's
  frame stacks (8 x 4 x 84 x 84 pixels each) made a 59 MB manifest that took 4.6 s to write as lists.
  Decoding knows a fixed set of tags and builds only arrays of numeric dtypes and whitelisted bit
  generators, so a crafted file can describe data but never name a class to build or a function to call.
- :func:`snapshot_env` walks an environment object graph (vector env -> copies -> wrappers -> the
  environment), recording every attribute that is plain data; spaces, specs, enums and callables are
  configuration and are skipped. An attribute holding anything else (a Box2D world, a MuJoCo
  ``MjData``, a subprocess pipe) cannot be captured: it is reported, and resume then starts new
  episodes instead of pretending to be exact.
- :func:`restore_env` writes a snapshot back into an environment of the same structure (same classes
  and attribute names, checked first: a mismatch is a UserInputError naming the attribute).
- :func:`rng_state` / :func:`set_rng_state`: Python and NumPy states as JSON, torch's as tensors.

Two kinds of value beyond plain data are captured because Atari needs them: a ``collections.deque``
(Gymnasium's ``FrameStackObservation`` keeps its frames in one) and the emulator of an Atari game
(ale-py's ``ALEInterface``: its ``cloneState(include_rng=True)`` serialized to bytes, the sticky-action
generator included, and put back with ``restoreState``). The bytes are the emulator's own format, read
by ale-py's C++ code: data, never Python to run.
"""

from __future__ import annotations

import base64
import binascii
import collections
import enum
import inspect
import random
import types
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from policygrad.core.envs import VecEnv
from policygrad.core.errors import UserInputError

# dtype kinds an encoded array may have: bool, integers, floats, bytes and text (never objects)
ARRAY_KINDS = "biufSU"
# Attributes that hold construction arguments or metadata, not state (and may hold anything)
STATIC_NAMES = ("metadata", "spec", "_saved_kwargs", "_ezpickle_args", "_ezpickle_kwargs")
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
TAGS = ("__ndarray__", "__scalar__", "__tuple__", "__dict__", "__generator__", "__random_state__",
        "__py_random__", "__deque__", "__ale_state__")
# Larger numeric arrays are encoded as base64 of their bytes (exact, ~1.3 bytes a byte); smaller ones stay
# lists of numbers that a person reading the manifest can read
LIST_LIMIT = 256


class EmulatorState(bytes):
    """A decoded Atari emulator state (``ALEState.serialize()``'s bytes): :func:`restore_env` hands it to the
    live emulator's ``restoreState`` rather than replacing the emulator object."""


def _is_emulator(value: Any) -> bool:
    """ale-py's ``ALEInterface``, recognised without importing ale-py (an optional extra)."""
    return type(value).__name__ == "ALEInterface" and type(value).__module__.startswith("ale_py")


class Unsupported(Exception):
    """A value that is not plain data (its type is the message)."""


# -- tagged JSON -------------------------------------------------------------------------------------
def encode(value: Any) -> Any:
    """``value`` as JSON-ready data; raises :class:`Unsupported` for anything that is not plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in ARRAY_KINDS:
            raise Unsupported(f"ndarray of dtype {value.dtype}")
        if value.dtype.kind in "biuf" and value.size > LIST_LIMIT:
            raw = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
            return {"__ndarray__": value.dtype.str, "shape": list(value.shape), "base64": raw}
        flat = value.ravel().tolist()
        if value.dtype.kind == "S":  # bytes are not JSON: latin-1 maps each byte to one character
            flat = [b.decode("latin-1") for b in flat]
        return {"__ndarray__": value.dtype.str, "shape": list(value.shape), "data": flat}
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise Unsupported(f"NumPy scalar of dtype {value.dtype}")
        return {"__scalar__": value.dtype.str, "value": value.item()}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, np.random.Generator):
        return {"__generator__": type(value.bit_generator).__name__, "state": encode(value.bit_generator.state)}
    if isinstance(value, np.random.RandomState):
        return {"__random_state__": encode(value.get_state(legacy=False))}
    if isinstance(value, random.Random):
        return {"__py_random__": encode(value.getstate())}
    if isinstance(value, collections.deque):
        return {"__deque__": [encode(v) for v in value], "maxlen": value.maxlen}
    if _is_emulator(value):
        state = value.cloneState(include_rng=True).serialize()
        return {"__ale_state__": encode(np.frombuffer(state, dtype=np.uint8))}
    raise Unsupported(type(value).__qualname__)


def _dtype(text: Any) -> np.dtype:
    try:
        dtype = np.dtype(text) if isinstance(text, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in ARRAY_KINDS:
        raise UserInputError(f"dtype {text!r} is not a numeric dtype")
    return dtype


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from; UserInputError for anything it would not have made."""
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise UserInputError(f"unexpected {type(data).__name__} in a snapshot")
    tags = [t for t in TAGS if t in data]
    if len(tags) != 1:
        raise UserInputError(f"unexpected object with keys {sorted(data)[:5]} in a snapshot")
    tag = tags[0]
    if tag == "__ndarray__" and "base64" in data:
        return _array_from_base64(_dtype(data[tag]), data)
    if tag == "__ndarray__":
        dtype, shape, flat = _dtype(data[tag]), data.get("shape"), data.get("data")
        if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
                and isinstance(flat, list) and len(flat) == int(np.prod(shape, dtype=np.int64))
                and all(isinstance(x, str if dtype.kind in "SU" else (bool, int, float)) for x in flat)):
            raise UserInputError("malformed array in a snapshot (shape and data do not fit)")
        if dtype.kind == "S":
            flat = [x.encode("latin-1") for x in flat]
        return np.array(flat, dtype=dtype).reshape(shape)
    if tag == "__scalar__":
        value = data.get("value")
        if not isinstance(value, (bool, int, float)):
            raise UserInputError("malformed NumPy scalar in a snapshot")
        dtype = _dtype(data[tag])
        if dtype.kind not in "biuf":
            raise UserInputError("malformed NumPy scalar in a snapshot")
        return dtype.type(value)
    if tag == "__tuple__":
        if not isinstance(data[tag], list):
            raise UserInputError("malformed tuple in a snapshot")
        return tuple(decode(v) for v in data[tag])
    if tag == "__dict__":
        pairs = data[tag]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise UserInputError("malformed dict in a snapshot")
        return {_hashable(decode(k)): decode(v) for k, v in pairs}
    if tag == "__generator__":
        name = data[tag]
        if name not in BIT_GENERATORS:
            raise UserInputError(f"bit generator {name!r} is not one of {', '.join(BIT_GENERATORS)}")
        bit_generator = getattr(np.random, name)()
        try:
            bit_generator.state = decode(data.get("state"))
        except (TypeError, ValueError, KeyError) as exc:
            raise UserInputError(f"malformed {name} state in a snapshot ({exc})") from None
        return np.random.Generator(bit_generator)
    if tag == "__random_state__":
        generator = np.random.RandomState()
        try:
            generator.set_state(decode(data[tag]))
        except (TypeError, ValueError, KeyError) as exc:
            raise UserInputError(f"malformed RandomState in a snapshot ({exc})") from None
        return generator
    if tag == "__deque__":
        maxlen = data.get("maxlen")
        if not isinstance(data[tag], list) or not (maxlen is None or (type(maxlen) is int and maxlen >= 0)):
            raise UserInputError("malformed deque in a snapshot")
        return collections.deque((decode(v) for v in data[tag]), maxlen=maxlen)
    if tag == "__ale_state__":
        state = decode(data[tag])
        if not (isinstance(state, np.ndarray) and state.dtype == np.uint8 and state.ndim == 1):
            raise UserInputError("malformed Atari emulator state in a snapshot")
        return EmulatorState(state.tobytes())
    py_generator = random.Random()  # "__py_random__"
    py_generator.setstate(python_random_state(decode(data[tag])))
    return py_generator


def _array_from_base64(dtype: np.dtype, data: dict[str, Any]) -> np.ndarray:
    """The array whose bytes ``data["base64"]`` holds; UserInputError unless they fill ``data["shape"]`` exactly
    (and are 0 or 1 for a bool array: any other byte would make a bool NumPy cannot print or compare)."""
    shape, text = data.get("shape"), data["base64"]
    if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape) and isinstance(text, str)
            and dtype.kind in "biuf" and "data" not in data):
        raise UserInputError("malformed array in a snapshot (shape and data do not fit)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UserInputError("malformed array in a snapshot (its base64 data does not decode)") from None
    if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise UserInputError("malformed array in a snapshot (shape and data do not fit)")
    if dtype.kind == "b" and raw.strip(b"\x00\x01"):
        raise UserInputError("malformed array in a snapshot (a bool array holds a byte other than 0 and 1)")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()  # a copy: frombuffer's array is read-only


def _hashable(key: Any) -> Any:
    if isinstance(key, (list, dict, np.ndarray)):
        raise UserInputError("malformed dict key in a snapshot")
    return key


def python_random_state(state: Any) -> tuple:
    """Check that ``state`` has the shape of ``random.getstate()`` (version 3: 624 words + position)."""
    if not (isinstance(state, (tuple, list)) and len(state) == 3 and state[0] == 3
            and isinstance(state[1], (tuple, list)) and len(state[1]) == 625
            and all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w < 2**32 for w in state[1])
            and state[1][-1] <= 624 and (state[2] is None or isinstance(state[2], float))):
        raise UserInputError("malformed Python random state")
    return 3, tuple(state[1]), state[2]


# -- random-number generators ------------------------------------------------------------------------
def rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The global Python, NumPy and torch (CPU and every CUDA device) generator states: the JSON part
    and the tensors."""
    data = {"python": encode(random.getstate()), "numpy": encode(np.random.get_state(legacy=False))}
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return data, tensors


def set_rng_state(data: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Put back what :func:`rng_state` returned (checked: a malformed state is a ValueError)."""
    python = python_random_state(decode(data.get("python")))
    numpy_state = decode(data.get("numpy"))
    torch_state = tensors.get("rng.torch")
    current = torch.get_rng_state()
    if torch_state is None or torch_state.dtype != current.dtype or torch_state.shape != current.shape:
        raise UserInputError("the torch random state is missing or malformed")
    probe = np.random.RandomState()
    try:
        probe.set_state(numpy_state)  # validate before touching the global generator
    except (TypeError, ValueError, KeyError) as exc:
        raise UserInputError(f"malformed NumPy random state ({exc})") from None
    random.setstate(python)
    np.random.set_state(numpy_state)
    torch.set_rng_state(torch_state)
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# -- environment object graphs -----------------------------------------------------------------------
ENV_TYPES = (gym.Env, gym.vector.VectorEnv)
STATIC_TYPES = (gym.Space, gym.envs.registration.EnvSpec, enum.Enum, types.ModuleType, type)


def _is_static(value: Any) -> bool:
    """Configuration rather than state: spaces, specs, enums, modules, classes, functions (and lists
    of them, such as a sync vector env's ``env_fns``)."""
    if isinstance(value, STATIC_TYPES):
        return True
    if isinstance(value, (list, tuple)) and value and all(_is_static(v) for v in value):
        return True
    return callable(value) and not isinstance(value, (*ENV_TYPES, np.ndarray, np.random.Generator))


def _is_env_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, ENV_TYPES) for v in value)


def snapshot_env(env: Any) -> tuple[dict[str, Any], list[str]]:
    """The plain-data state of ``env`` and of every environment it holds (copies, wrapped envs), and
    the attributes that could not be captured (``path: type``; empty when the snapshot is complete)."""
    unsupported: list[str] = []
    return _walk(env, type(env).__name__, unsupported, set()), unsupported


def _walk(obj: Any, path: str, unsupported: list[str], seen: set[int]) -> dict[str, Any]:
    seen.add(id(obj))
    attrs: dict[str, Any] = {}
    envs: dict[str, Any] = {}
    for name, value in sorted(vars(obj).items()):
        where = f"{path}.{name}"
        if isinstance(value, ENV_TYPES):
            if id(value) not in seen:
                envs[name] = _walk(value, where, unsupported, seen)
        elif _is_env_list(value):
            envs[name] = [_walk(v, f"{where}[{i}]", unsupported, seen) for i, v in enumerate(value)]
        elif name not in STATIC_NAMES and not _is_static(value):
            try:
                attrs[name] = encode(value)
            except Unsupported as exc:
                unsupported.append(f"{where}: {exc}")
    return {"class": type(obj).__qualname__, "attrs": attrs, "envs": envs}


def _first_difference(saved: Any, live: Any, path: str) -> str:
    """Why the snapshot ``saved`` cannot be restored into the environment ``live`` ("" if it can): it
    fits when it holds the same classes holding the same environments, and every live attribute. A
    saved attribute the live object lacks is allowed if it is a plain name (Gymnasium creates
    ``_np_random`` at the first reset, for one); :func:`_check_new_names` then makes sure it shadows
    nothing of its class."""
    if isinstance(live, list):
        if not isinstance(saved, list) or len(saved) != len(live):
            return f"{path} holds {len(live)} environments, the checkpoint a different number"
        for i, (s, v) in enumerate(zip(saved, live)):
            diff = _first_difference(s, v, f"{path}[{i}]")
            if diff:
                return diff
        return ""
    if not (isinstance(saved, dict) and isinstance(saved.get("attrs"), dict) and isinstance(saved.get("envs"), dict)):
        return f"{path or live['class']} is malformed in the checkpoint"
    if saved.get("class") != live["class"]:
        return f"{path or live['class']} was a {saved.get('class')!r} and is a {live['class']!r}"
    missing = set(live["attrs"]) - set(saved["attrs"])
    if missing:
        return f"{path or live['class']}: attributes {sorted(missing)} are not in the checkpoint"
    odd = [n for n in set(saved["attrs"]) - set(live["attrs"])
           if not (isinstance(n, str) and n.isidentifier() and not n.startswith("__"))]
    if odd:
        return f"{path or live['class']}: the checkpoint holds attributes with invalid names {sorted(odd)[:3]}"
    if set(saved["envs"]) != set(live["envs"]):
        return (f"{path or live['class']}: holds environments {sorted(live['envs'])}, the checkpoint "
                f"{sorted(saved['envs'])}")
    for name, sub in live["envs"].items():
        diff = _first_difference(saved["envs"][name], sub, f"{path or live['class']}.{name}")
        if diff:
            return diff
    return ""


def _check_new_names(obj: Any, tree: dict[str, Any], path: str) -> None:
    """A saved attribute that ``obj`` does not have yet must not shadow a method or property; an emulator
    state goes only where an emulator is, and an emulator gets nothing else."""
    for name, value in tree["attrs"].items():
        if _is_emulator(vars(obj).get(name)) != isinstance(value, EmulatorState):
            raise UserInputError(f"the saved environment state of {path}.{name} does not fit what it holds")
        if name in vars(obj) or not hasattr(type(obj), name):
            continue
        default = inspect.getattr_static(type(obj), name)  # a class-level default such as None is fine
        if callable(default) or hasattr(type(default), "__get__"):
            raise UserInputError(f"the saved environment state would overwrite {path}.{name}, which is not data")
    for name, sub in tree["envs"].items():
        child = getattr(obj, name)
        if isinstance(sub, list):
            for i, (c, t) in enumerate(zip(child, sub)):
                _check_new_names(c, t, f"{path}.{name}[{i}]")
        else:
            _check_new_names(child, sub, f"{path}.{name}")


def restore_env(env: Any, tree: dict[str, Any]) -> None:
    """Write snapshot ``tree`` back into ``env``. The saved and live environments must have the same
    structure; every value is decoded and checked before anything is written, so a bad snapshot
    changes nothing."""
    live, _ = snapshot_env(env)
    diff = _first_difference(tree, live, "")
    if diff:
        raise UserInputError(f"the saved environment state does not fit {type(env).__name__}: {diff}")
    decoded = _decode_tree(tree)
    _check_new_names(env, decoded, type(env).__name__)
    _write(env, decoded, set())


def _decode_tree(tree: Any) -> Any:
    if isinstance(tree, list):
        return [_decode_tree(t) for t in tree]
    return {"attrs": {k: decode(v) for k, v in tree["attrs"].items()},
            "envs": {k: _decode_tree(v) for k, v in tree["envs"].items()}}


def _write(obj: Any, tree: dict[str, Any], seen: set[int]) -> None:
    seen.add(id(obj))
    for name, value in tree["attrs"].items():
        current = getattr(obj, name, None)
        if isinstance(value, EmulatorState):
            from ale_py import ALEState  # present: the live environment is an Atari game

            getattr(obj, name).restoreState(ALEState(bytes(value)))  # checked an emulator by _check_new_names
        elif (isinstance(current, np.ndarray) and isinstance(value, np.ndarray) and current.shape == value.shape
                and current.dtype == value.dtype and current.flags.writeable):
            current[...] = value  # in place: views and aliases of the array stay valid
        else:
            setattr(obj, name, value)
    for name, sub in tree["envs"].items():
        child = getattr(obj, name)
        if isinstance(sub, list):
            for c, s in zip(child, sub):
                _write(c, s, seen)
        elif id(child) not in seen:
            _write(child, sub, seen)


# -- a VecEnv: its bookkeeping and its environments ----------------------------------------------------
def vec_env_state(envs: VecEnv) -> dict[str, Any]:
    """What ``envs`` and its environments need to continue exactly, as JSON-ready data: episode
    accumulators, step count and a plain-data snapshot of the Gymnasium vector env (``env`` is None,
    and ``unsupported`` names why, when its state is not plain data)."""
    returns, lengths, needs_reset, step_count = envs.bookkeeping()
    tree, unsupported = snapshot_env(envs.env)
    return {"returns": encode(returns), "lengths": encode(lengths), "needs_reset": encode(needs_reset),
            "step_count": step_count, "env": None if unsupported else tree, "unsupported": unsupported}


def restore_vec_env_state(envs: VecEnv, state: Any) -> bool:  # a dict from vec_env_state, read back: checked here
    """Restore :func:`vec_env_state`'s data into ``envs``; returns False when the environments' own
    state was not saved (the caller then starts new episodes). UserInputError if the state does not fit."""
    try:
        arrays = [decode(state[k]) for k in ("returns", "lengths", "needs_reset")]
        step_count = state["step_count"]
    except (KeyError, TypeError) as exc:
        raise UserInputError(f"the saved environment state is malformed ({exc!r} is missing)") from None
    for name, value, dtype in zip(("returns", "lengths", "needs_reset"), arrays, (np.float64, np.int64, bool)):
        if not isinstance(value, np.ndarray) or value.shape != (envs.num_envs,) or value.dtype != dtype:
            raise UserInputError(f"the saved environment state's {name} does not fit {envs.num_envs} copies")
    if not isinstance(step_count, int) or step_count < 0:
        raise UserInputError(f"the saved environment step count {step_count!r} is not an integer >= 0")
    if state.get("env") is not None:
        restore_env(envs.env, state["env"])
    returns, lengths, needs_reset = arrays
    envs.restore_bookkeeping(returns, lengths, needs_reset, step_count)
    return state.get("env") is not None
