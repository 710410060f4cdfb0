"""Your own ``torch.nn.Module`` as the network of any algorithm (the guide's Q7).

:class:`UserNetwork` wraps the module and offers what the algorithms call on a network
(:class:`~policygrad.core.networks.PolicyNetwork`); the action distribution comes from the built-in
heads of :mod:`policygrad.core.distributions`, so your module only computes numbers. The contract:

- **Building it.** A config's ``network="module:Class"`` (``--network module:Class``) is built as
  ``Class(observation_space, action_space)``, with the environment's Gymnasium spaces, after the run's
  seed is set. From Python, ``pg.train(config, network=module)`` takes a module you built yourself.
- **forward(obs)** gets float32 observations ``(B, *observation_space.shape)`` (standardised first when
  ``normalize_obs``; not flattened, not one-hot) and returns the distribution's parameters, or
  ``(params, value)``. For a Dict or Tuple observation space it gets a dict of tensors by path
  (:mod:`policygrad.core.structured`: a Dict key, a Tuple index as ``"0"``, nested parts joined by
  ``/``), each ``(B, *part_shape)`` in its storage dtype (uint8 images stay uint8; the rest float32,
  Box parts standardised with ``normalize_obs``); an ``"action_mask"`` key is never among them: the
  library applies masks to the logits you return. ``params`` is what the built-in head's last layer
  would output:

  ================================== ========================================================
  Discrete(n)                        logits ``(B, n)``
  MultiDiscrete(nvec)                each dimension's logits side by side ``(B, sum(nvec))``
  MultiBinary(n)                     logits ``(B, n)``
  Box((d,)), ``gaussian`` (auto)     the mean ``(B, d)``; the log std is the library's: one free
                                     parameter per dimension, starting at ``log_std_init``
  Box, ``gaussian_state_std``/``tanh``  mean and log std side by side ``(B, 2d)``
  Box, ``beta``                      two outputs side by side ``(B, 2d)``; alpha, beta = softplus + 1
  ================================== ========================================================

- **The value** V(s), for the algorithms with a critic (all but REINFORCE without ``baseline=value``):
  the second output of ``forward``, or else a method ``value(obs)``; ``(B,)`` or ``(B, 1)``.

Observation normalization, reward scaling and PopArt work as with the built-in network (PopArt
rescales a one-input linear layer that the library puts after your value). The fast acting paths
(``fast/``) are for the built-in MLP only: a user network always acts through ``dist_and_value``.
Outputs are checked on every call; the first check runs when the network is built, on two zero
observations in eval mode, so a wrong shape is a UserInputError naming the expected one before training.
"""

from __future__ import annotations

import itertools
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.core.config import import_user_module
from policygrad.core.distributions import ActionDistribution, ActionHead, BoxHead, make_head
from policygrad.core.errors import UserInputError
from policygrad.core.masks import masked_distribution, split_mask, strip_mask
from policygrad.core.networks import PolicyNetwork, build_agent
from policygrad.core.normalization import ObservationNormalizer, PopArt, RewardScaler
from policygrad.core.precision import refuse_unsupported
from policygrad.core.recurrent import build_recurrent_agent
from policygrad.core.structured import Observation, StructuredNormalizer, is_structured, obs_rows, zeros_like_space

VALUE_METHOD = "value"  # the optional method of a user's module that returns V(s)


def class_spec(cls: type) -> str:
    """``'module:QualifiedName'`` of a class: what a config's ``network`` field records."""
    return f"{cls.__module__}:{cls.__qualname__}"


def network_class(spec: str) -> type[nn.Module]:
    """The ``nn.Module`` class that ``spec`` (``'module:Class'``) names; imports the module.
    UserInputError naming the ``network`` field when it cannot be imported or is not a module class."""
    module_name, _, attr = spec.partition(":")
    try:
        module = import_user_module(module_name)
    except ImportError as exc:
        raise UserInputError(f"network={spec!r}: cannot import module {module_name!r} ({exc})") from None
    target: Any = module
    for name in attr.split("."):
        target = getattr(target, name, None)
    if not (isinstance(target, type) and issubclass(target, nn.Module)):
        raise UserInputError(f"network={spec!r}: module {module_name!r} has no torch.nn.Module class {attr!r}")
    return target


def _bare_head(space: gym.Space, kind: str) -> tuple[ActionHead, int, str]:
    """The built-in head for ``space`` without its linear layer (the user's module computes what that
    layer would), the number of outputs its ``distribution()`` takes, and a description of them."""
    if kind == "gsde":  # its noise is a function of the hidden features, which only the built-in MLP exposes
        raise UserInputError("distribution='gsde' needs the built-in MLP (its last hidden features); "
                             "with your own network use gaussian, gaussian_state_std, tanh or beta")
    head = make_head(space, 1, kind)
    width = head.last_layer.out_features
    del head.out
    if isinstance(head, BoxHead):
        what = {"gaussian": "the mean", "gaussian_state_std": "mean and log std side by side",
                "tanh": "mean and log std side by side", "beta": "alpha and beta inputs side by side"}[head.kind]
    else:
        what = "logits"
    return head, width, what


class UserNetwork(PolicyNetwork):
    """A user's ``nn.Module`` as a policy (and value) network; see the module docstring for the contract.

    ``name`` says which network error messages are about (the config's ``network``, by default the
    module's class). ``algo`` only names the algorithm in the error for a missing value.
    """

    head: ActionHead
    value_affine: nn.Linear | None

    def __init__(
        self,
        module: nn.Module,
        observation_space: gym.Space,
        action_space: gym.Space,
        with_value: bool = True,
        distribution: str = "auto",
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        reward_scaler: RewardScaler | None = None,
        popart: bool = False,
        name: str = "",
        algo: str = "",
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module) or isinstance(module, PolicyNetwork):
            raise UserInputError(f"network: expected your own torch.nn.Module, not {type(module).__name__}")
        self.name = name or class_spec(type(module))
        self.observation_space, self.action_space = observation_space, action_space
        structured = is_structured(observation_space)
        if normalize_obs and not isinstance(observation_space, gym.spaces.Box) and not structured:
            raise UserInputError(f"normalize_obs=True needs Box observations, not {observation_space}")
        self.obs_normalizer = None
        if normalize_obs and structured:  # (typed as the plain one: the NumPy paths never see this network)
            self.obs_normalizer = StructuredNormalizer(observation_space)  # type: ignore[assignment]
        elif normalize_obs and isinstance(observation_space, gym.spaces.Box):
            self.obs_normalizer = ObservationNormalizer(observation_space.shape)
        self.reward_scaler = reward_scaler
        self.module = module
        self.head, self.width, self.outputs = _bare_head(action_space, distribution)
        if log_std_init != 0.0:
            if not isinstance(self.head, BoxHead):
                raise UserInputError(f"log_std_init={log_std_init} needs a Gaussian head; {action_space} has no std "
                                     "to set")
            # Only the library's own free log std starts there: a state-dependent std is your network's
            # output (start it there), and beta has none (both ignore it, so a preset's value stops neither)
            if self.head.kind == "gaussian":
                self.head.init_log_std(log_std_init)
        # A value(obs) method serves when forward returns no value (a submodule named value is no method)
        method = getattr(module, VALUE_METHOD, None)
        self.value_method = callable(method) and not isinstance(method, nn.Module)
        self.forward_value = self._probe(with_value)
        self.value_method = self.value_method and not self.forward_value
        self._has_value = with_value
        if with_value and not (self.forward_value or self.value_method):
            raise UserInputError(f"network={self.name!r} returns no value V(s), which {algo or 'this algorithm'} "
                                 "needs: return (params, value) from forward(obs), or define value(obs) "
                                 "(only REINFORCE without baseline=value trains a policy alone)")
        self.popart = PopArt() if popart and with_value else None
        # PopArt keeps V(s) unchanged by rescaling the value's last linear layer: the library's own
        # one-input layer after your value, starting as the identity
        self.value_affine = nn.Linear(1, 1) if self.popart is not None else None
        if self.value_affine is not None:
            nn.init.ones_(self.value_affine.weight)
            nn.init.zeros_(self.value_affine.bias)

    # -- checking what the module returns ------------------------------------------------------------
    def _shape_error(self, what: str, got: Any, rows: int) -> UserInputError:
        shape = (f"shape {tuple(got.shape)}" if isinstance(got, torch.Tensor)
                 else got if isinstance(got, str) else f"a {type(got).__name__}")
        kind = f" with distribution={self.head.kind!r}" if isinstance(self.head, BoxHead) else ""
        return UserInputError(f"network={self.name!r}: {what} returned {shape}; {self.action_space} actions{kind} "
                              f"need {self.outputs} of shape (B, {self.width}), here ({rows}, {self.width}), "
                              "or (params, value)")

    def _split(self, out: Any, rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward``'s output as (params ``(B, width)``, value ``(B,)`` or None), checked."""
        value = None
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise self._shape_error("forward(obs)", f"a sequence of {len(out)}", rows)
            out, value = out
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (rows, self.width):
            raise self._shape_error("forward(obs)", out, rows)
        return out, None if value is None else self._checked_value(value, rows, "forward(obs)[1]")

    def _checked_value(self, value: Any, rows: int, what: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or tuple(value.shape) not in ((rows,), (rows, 1)):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise UserInputError(f"network={self.name!r}: {what} (the value V(s)) is {got}; expected shape (B,) "
                                 f"or (B, 1), here ({rows},)")
        return value.reshape(rows)

    @torch.no_grad()
    def _probe(self, with_value: bool) -> bool:
        """Run the module on two zero observations (eval mode, so no batch-norm statistic moves) and
        check its outputs now, not mid-run; returns whether ``forward`` returns a value."""
        like = next(itertools.chain(self.module.parameters(), self.module.buffers()), None)
        obs = zeros_like_space(self.observation_space, 2, like.device if like is not None else None)
        shape = ({path: tuple(part.shape) for path, part in obs.items()} if isinstance(obs, dict)
                 else tuple(obs.shape))
        was_training = self.module.training
        self.module.eval()
        try:
            try:
                out = self.module(obs)
            except Exception as exc:
                raise UserInputError(f"network={self.name!r}: forward(obs) failed on observations of shape "
                                     f"{shape} ({type(exc).__name__}: {exc})") from exc
            value = self._split(out, 2)[1]
            if with_value and value is None and self.value_method:
                self._method_value(obs)
        finally:
            self.module.train(was_training)
        return value is not None

    # -- the PolicyNetwork interface --------------------------------------------------------------------
    @property
    def has_value(self) -> bool:
        return self._has_value

    def preprocess(self, obs: Observation) -> Observation:
        """Observations as the module gets them: float32 ``(B, *obs_shape)``, standardised if asked (a
        dict of parts for Dict/Tuple spaces, see the module docstring)."""
        if isinstance(obs, dict):
            return obs if self.obs_normalizer is None else self.obs_normalizer(obs)
        obs = obs.float()
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)

    def _value_units(self, raw: torch.Tensor) -> torch.Tensor:
        if self.value_affine is not None:
            raw = nn.functional.linear(raw.unsqueeze(-1), self.value_affine.weight, self.value_affine.bias).squeeze(-1)
        return self.value_output(raw)

    def _method_value(self, x: Observation) -> torch.Tensor:
        value_fn = getattr(self.module, VALUE_METHOD)
        return self._checked_value(value_fn(x), obs_rows(x), "value(obs)")

    def dist(self, obs: Observation) -> ActionDistribution:
        obs, mask = split_mask(obs)
        x = self.preprocess(obs)
        return masked_distribution(self.head, self._split(self.module(x), obs_rows(x))[0], mask)

    def value(self, obs: Observation) -> torch.Tensor:
        if not self._has_value:
            raise RuntimeError("this network has no value (its algorithm asked for a policy alone)")
        x = self.preprocess(strip_mask(obs))
        raw = self._method_value(x) if self.value_method else self._split(self.module(x), obs_rows(x))[1]
        if raw is None:  # checked when built: forward returns a value, or there is value(obs)
            raise RuntimeError("the user network returned no value")
        return self._value_units(raw)

    def dist_and_value(self, obs: Observation) -> tuple[ActionDistribution, torch.Tensor]:
        obs, mask = split_mask(obs)
        x = self.preprocess(obs)
        params, raw = self._split(self.module(x), obs_rows(x))
        dist = masked_distribution(self.head, params, mask)
        if not self._has_value:
            return dist, torch.zeros(obs_rows(x), device=params.device)
        if raw is None:
            raw = self._method_value(x)
        return dist, self._value_units(raw)

    def value_layer(self) -> nn.Linear:
        if self.value_affine is None:  # made whenever PopArt is
            raise RuntimeError("this network has no value layer")
        return self.value_affine

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        return self.head.to_env(actions)


def build_network(cfg: Any, observation_space: gym.Space, action_space: gym.Space, with_value: bool,
                  module: nn.Module | None = None) -> PolicyNetwork:
    """The network a run uses: ``module`` (the user's, given from Python) or the class the config's
    ``network`` names, wrapped in :class:`UserNetwork`; otherwise the built-in MLP (:func:`build_agent`)."""
    if getattr(cfg, "recurrent", "none") != "none":  # the built-in network with a core (core/recurrent.py)
        if module is not None:
            raise UserInputError(f"recurrent={cfg.recurrent!r} applies to the built-in network, not to a module "
                                 "passed in: use recurrent='none' with your own module")
        return build_recurrent_agent(cfg, observation_space, action_space, with_value)
    if module is None and not cfg.network:
        return build_agent(cfg, observation_space, action_space, with_value)
    refuse_unsupported(getattr(cfg, "precision", "fp32"), "user")
    if module is None:
        cls = network_class(cfg.network)
        try:
            module = cls(observation_space, action_space)
        except TypeError as exc:
            raise UserInputError(f"network={cfg.network!r}: {cls.__qualname__}(observation_space, action_space) "
                                 f"failed ({exc}); a network named in a config is built from the two spaces alone "
                                 "(from Python, pass your module instead: pg.train(config, network=...), "
                                 "pg.load(path, network=...))") from exc
    return UserNetwork(module, observation_space, action_space, with_value=with_value, distribution=cfg.distribution,
                       log_std_init=cfg.log_std_init, normalize_obs=cfg.normalize_obs,
                       reward_scaler=RewardScaler(cfg.num_envs, cfg.gamma) if cfg.reward_norm == "scale" else None,
                       popart=cfg.reward_norm == "popart", name=cfg.network, algo=cfg.algo)


def check_importable(network: PolicyNetwork, why: str) -> None:
    """UserInputError unless a user network's class can be imported by name (other processes rebuild it
    from its name: A3C's spawned workers); nothing to check for the built-in network."""
    if not isinstance(network, UserNetwork):
        return
    cls = type(network.module)
    spec = class_spec(cls)
    try:
        importable = cls.__module__ != "__main__" and network_class(spec) is cls
    except ValueError:
        importable = False
    if not importable:
        raise UserInputError(f"network={spec!r}: {why}, so the class must be importable by name from a module "
                             "(not __main__, not defined inside a function): put it in a .py file on the Python path")
