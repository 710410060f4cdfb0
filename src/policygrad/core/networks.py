"""Policy and value networks: an MLP builder, weight-init schemes, the interface every network
offers the algorithms (PolicyNetwork) and the built-in ActorCritic module.

The default init follows the PPO implementation details (Engstrom et al. 2020; Huang et al. 2022):
orthogonal weights with gain sqrt(2) in hidden layers, 0.01 for the policy's last layer (a nearly
uniform initial policy) and 1.0 for the value's, zero biases.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.core.distributions import ActionDistribution, BoxHead, GSDEHead, make_head
from policygrad.core.encoders import (  # ACTIVATION_LAYERS, activation_function: re-exported (defined here once)
    ACTIVATION_LAYERS as ACTIVATION_LAYERS,
)
from policygrad.core.encoders import (
    ImageEncoder,
    MLPEncoder,
    make_image_encoder,
    resolve_encoder,
    run_mlp,
)
from policygrad.core.encoders import activation_function as activation_function
from policygrad.core.errors import UserInputError
from policygrad.core.masks import masked_distribution, split_mask, strip_mask
from policygrad.core.normalization import ObservationNormalizer, PopArt, RewardScaler
from policygrad.core.precision import autocast_dtype, refuse_unsupported
from policygrad.core.structured import Observation, StructuredEncoder, StructuredNormalizer, is_structured, obs_rows

HIDDEN_GAIN = math.sqrt(2)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0


def obs_size(space: gym.Space) -> int:
    """Number of inputs an MLP needs for one observation of ``space`` (flattened; one-hot for Discrete)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise UserInputError(f"observation space {space} is not supported: use Box or Discrete observations")


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.linear(x, layer.weight, layer.bias)


def mlp(in_features: int, hidden_sizes: tuple[int, ...], activation: str) -> MLPEncoder:
    """Linear + activation for each hidden size; its output has ``hidden_sizes[-1]`` features."""
    return MLPEncoder(in_features, hidden_sizes, activation)


def init_layer(layer: nn.Linear | nn.Conv2d, scheme: str, gain: float) -> None:
    """Initialise one linear (or convolutional) layer in place; biases start at zero except for
    ``torch-default``."""
    if scheme == "torch-default":
        return
    if scheme == "orthogonal":
        nn.init.orthogonal_(layer.weight, gain)
    elif scheme == "xavier":
        nn.init.xavier_uniform_(layer.weight, gain)
    elif scheme == "kaiming":
        # He init has its own sqrt(2) gain; heads are scaled by the same ratio as the other schemes
        # (0.01 / sqrt 2 for the policy) so the first policy is near-uniform whatever the scheme.
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        layer.weight.data.mul_(gain / HIDDEN_GAIN)
    else:
        raise UserInputError(f"init={scheme!r} is invalid: expected orthogonal | xavier | kaiming | torch-default")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def init_mlp(body: nn.Sequential, scheme: str) -> None:
    for layer in body:
        if isinstance(layer, nn.Linear):
            init_layer(layer, scheme, HIDDEN_GAIN)


def init_encoder(encoder: nn.Module, scheme: str) -> None:
    """Every linear and convolutional layer of an image encoder, in order, with the hidden gain sqrt(2)
    (CleanRL's ``layer_init`` for the Nature CNN; SB3 likewise)."""
    for layer in encoder.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            init_layer(layer, scheme, HIDDEN_GAIN)


def check_observation_space(cfg, observation_space: gym.Space) -> None:
    """Raise UserInputError unless the network ``cfg`` asks for can take ``observation_space``: a
    Box or Discrete for the MLP; for a convolutional encoder an image (rank 3, uint8 or floats in
    [0, 1]) of a known layout, large enough, without ``normalize_obs``. Builds nothing."""
    precision = getattr(cfg, "precision", "fp32")
    if getattr(cfg, "network", ""):  # the user's own module takes what it takes
        refuse_unsupported(precision, "user")
        return
    if is_structured(observation_space):  # every part must fit its encoder (built once, then dropped)
        resolve_encoder(observation_space, cfg.encoder)
        parts = StructuredEncoder(observation_space, tuple(cfg.hidden_sizes), cfg.activation, cfg.encoder,
                                  cfg.image_layout)
        refuse_unsupported(precision, "cnn" if any(isinstance(m, ImageEncoder) for m in parts.modules()) else "mlp")
        return
    kind = resolve_encoder(observation_space, cfg.encoder)
    if kind == "mlp":
        obs_size(observation_space)
        refuse_unsupported(precision, "mlp")
        return
    _check_image_normalization(cfg.normalize_obs, kind)
    make_image_encoder(kind, observation_space, cfg.image_layout, cfg.encoder)


def _check_image_normalization(normalize_obs: bool, kind: str) -> None:
    # Refused, not skipped: a user who asked for it learns it would not apply, and pixels need none:
    # the encoder divides uint8 by 255 (running statistics of pixels would also cost a pass per step).
    if normalize_obs:
        raise UserInputError(f"normalize_obs=True does not apply to images (encoder={kind!r}): the network scales "
                             "pixels itself (uint8 / 255); set normalize_obs=False")


class PolicyNetwork(nn.Module):
    """What the algorithms, the collectors, the trainer and :class:`policygrad.Agent` call on a network.

    Two kinds implement it: :class:`ActorCritic` (the MLPs a config describes) and
    :class:`policygrad.core.user_network.UserNetwork` (a user's own ``nn.Module``, wrapped). Shapes:
    ``obs`` ``(B, *obs_shape)`` -> ``dist`` over ``(B, *action_shape)``, values ``(B,)``. The
    normalization hooks are shared here; the speed paths in ``fast/`` apply to ActorCritic only.
    """

    observation_space: gym.Space
    action_space: gym.Space
    obs_normalizer: ObservationNormalizer | None
    reward_scaler: RewardScaler | None
    popart: PopArt | None
    # A recurrent network (core/recurrent.py) acts with step(obs, state, starts) and carries a state.
    is_recurrent: bool = False

    @property
    def has_value(self) -> bool:
        raise NotImplementedError

    def dist(self, obs: torch.Tensor) -> ActionDistribution:
        raise NotImplementedError

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dist_and_value(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        """The action distribution and V(s) ``(B,)`` (zeros without a value) in one pass."""
        raise NotImplementedError

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Policy actions as the environment takes them (NumPy)."""
        raise NotImplementedError

    def value_layer(self) -> nn.Linear:
        """The last linear layer of V(s), which PopArt rescales to keep V(s) unchanged."""
        raise NotImplementedError

    def observe(self, obs: Observation) -> None:
        """Training collectors show every observation here first: it updates the running statistics
        of observation normalization (evaluation never calls it, so they stay frozen there)."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(strip_mask(obs))

    def learning_rewards(self, reward: torch.Tensor, done: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The rewards the algorithm learns from: scaled when ``reward_norm='scale'``, else as given.
        (Episode returns are always logged from the environment's own rewards.)"""
        if self.reward_scaler is None:
            return reward
        return self.reward_scaler.scale(reward, done, valid)

    def value_output(self, head_output: torch.Tensor) -> torch.Tensor:
        """V(s) in the environment's units (PopArt's head outputs a normalized value)."""
        return head_output if self.popart is None else self.popart.denormalize(head_output)

    def normalize_values(self, values: torch.Tensor) -> torch.Tensor:
        """Values or value targets in the units the value loss uses: normalized under PopArt, else as given."""
        return values if self.popart is None else self.popart.normalize(values)

    def update_value_stats(self, targets: torch.Tensor) -> None:
        """Before a batch's value updates: PopArt merges its targets (and keeps V(s) unchanged)."""
        if self.popart is not None:
            self.popart.update(targets, self.value_layer())

    def forward(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        """``net(obs)`` is ``dist_and_value(obs)``: the action distribution and V(s) ``(B,)``."""
        return self.dist_and_value(obs)

    def reset_exploration(self, rows: int, step: int) -> None:
        """Collectors call this before acting at ``step`` of a rollout (0 first) on ``rows`` copies:
        a head with persistent exploration noise (gSDE) draws new noise when it is due. Others: nothing."""

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions ``(B, *action_shape)`` for ``obs``: the mode when ``deterministic``, else a sample.
        (Said explicitly every time: training samples, evaluation usually takes the mode.)"""
        dist = self.dist(obs)
        return dist.mode() if deterministic else dist.sample()


class ActorCritic(PolicyNetwork):
    """A policy pi(a|s) and, optionally, a state-value function V(s), assembled as
    encoder -> (shared or separate) -> heads.

    Shapes: ``obs`` ``(B, *obs_shape)`` -> ``dist`` over ``(B, *action_shape)``, ``value`` ``(B,)``.
    The encoder (:mod:`policygrad.core.encoders`) is an MLP for vectors (``hidden_sizes``,
    ``activation``) or a CNN for images (``encoder``, ``image_layout``; the MLP fields do nothing
    then). ``policy_body`` is the policy's encoder, ``value_body`` the value's; with ``shared_trunk``
    the two heads sit on one encoder (``value_body`` None); otherwise each has its own (the default:
    a value loss cannot then disturb the policy's features). The speed paths in ``fast/`` take the
    MLP encoder only (:attr:`mlp_encoder`); images take the plain path. ``precision='bf16'`` runs an
    image encoder under bf16 autocast (:attr:`autocast_dtype`; :mod:`policygrad.core.precision`).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        init: str = "orthogonal",
        shared_trunk: bool = False,
        with_value: bool = True,
        distribution: str = "auto",
        log_std_init: float = 0.0,
        normalize_obs: bool = False,
        reward_scaler: RewardScaler | None = None,
        popart: bool = False,
        sde_sample_freq: int = -1,
        encoder: str = "auto",
        image_layout: str = "auto",
        head_features: int | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        structured = is_structured(observation_space)
        if normalize_obs and not isinstance(observation_space, gym.spaces.Box) and not structured:
            raise UserInputError(f"normalize_obs=True needs Box observations, not {observation_space}")
        self.obs_normalizer = None
        if normalize_obs and structured:  # per Box-vector part (core/structured.py says why images are skipped)
            # (typed as the plain normalizer: what reads its .stats, the NumPy paths, never sees this network)
            self.obs_normalizer = StructuredNormalizer(observation_space)  # type: ignore[assignment]
        elif normalize_obs and isinstance(observation_space, gym.spaces.Box):
            self.obs_normalizer = ObservationNormalizer(observation_space.shape)
        self.reward_scaler = reward_scaler
        self.encoder_kind = resolve_encoder(observation_space, encoder)
        if structured:
            self.encoder_kind = "structured"
        self.shared_trunk = shared_trunk

        def make_encoder() -> MLPEncoder | ImageEncoder | StructuredEncoder:
            if self.encoder_kind == "mlp":
                return mlp(obs_size(observation_space), hidden_sizes, activation)
            if self.encoder_kind == "structured":
                return StructuredEncoder(observation_space, hidden_sizes, activation, encoder, image_layout)
            return make_image_encoder(self.encoder_kind, observation_space, image_layout, encoder)

        if self.encoder_kind not in ("mlp", "structured"):
            _check_image_normalization(normalize_obs, self.encoder_kind)
        self.policy_body: MLPEncoder | ImageEncoder | StructuredEncoder = make_encoder()
        # bf16 autocast around the image encoders only (core/precision.py): heads, losses and parameters fp32
        self.autocast_dtype = autocast_dtype(precision)
        if self.autocast_dtype is not None:
            convolutional = any(isinstance(m, ImageEncoder) for m in self.policy_body.modules())
            refuse_unsupported(precision, "cnn" if convolutional else "mlp")
        # the heads read the encoder's features, or those of a recurrent core after it (core/recurrent.py)
        n_feat = self.policy_body.out_features if head_features is None else head_features
        self.policy_head = make_head(action_space, n_feat, distribution, sde_sample_freq)
        self.value_body: MLPEncoder | ImageEncoder | StructuredEncoder | None = None
        self.value_head: nn.Linear | None = None
        if with_value:
            self.value_body = None if shared_trunk else make_encoder()
            self.value_head = nn.Linear(n_feat, 1)
        self.popart = PopArt() if popart and self.value_head is not None else None
        init_body = init_mlp if self.mlp_encoder else init_encoder
        init_body(self.policy_body, init)
        init_layer(self.policy_head.last_layer, init, POLICY_GAIN)
        if log_std_init != 0.0:
            if not isinstance(self.policy_head, (BoxHead, GSDEHead)):  # the heads with init_log_std
                raise UserInputError(f"log_std_init={log_std_init} needs a Gaussian or tanh head; "
                                     f"{action_space} has no std to set")
            self.policy_head.init_log_std(log_std_init)
        if self.value_body is not None:
            init_body(self.value_body, init)
        if self.value_head is not None:
            init_layer(self.value_head, init, VALUE_GAIN)

    @property
    def mlp_encoder(self) -> bool:
        """Whether the encoders are MLPs (the speed paths' networks), not CNNs."""
        return self.encoder_kind == "mlp"

    @property
    def has_value(self) -> bool:
        return self.value_head is not None

    def encode(self, body: nn.Sequential, x: Observation) -> torch.Tensor:
        """Float32 features ``(B, out_features)`` of the encoder ``body`` from ``x = preprocess(obs)``;
        with ``precision='bf16'`` the encoder computes under bf16 autocast and its output is cast back."""
        if self.encoder_kind == "mlp":
            return run_mlp(body, x)
        if self.autocast_dtype is None:
            return body(x)
        with torch.autocast(self.policy_head.last_layer.weight.device.type, dtype=self.autocast_dtype):
            features = body(x)
        return features.float()

    def preprocess(self, obs: Observation) -> Observation:
        """For the MLP: observations ``(B, *obs_shape)`` as float features ``(B, n_in)``. For an image
        encoder, ``obs`` as given: the encoder scales and transposes the pixels itself. For Dict/Tuple
        observations, the dict of parts (normalized per part with ``normalize_obs``)."""
        if self.encoder_kind == "structured":
            return obs if self.obs_normalizer is None else self.obs_normalizer(obs)
        if self.encoder_kind != "mlp":
            return obs
        if isinstance(self.observation_space, gym.spaces.Discrete):
            return nn.functional.one_hot(obs.long() - int(self.observation_space.start),
                                         int(self.observation_space.n)).float()
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs.float())
        if obs.dtype == torch.float32 and obs.dim() == 2:  # already features: skip two no-op calls
            return obs
        return obs.float().reshape(obs.shape[0], -1)

    def policy_distribution(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> ActionDistribution:
        """The action distribution from the policy's last hidden features (gSDE's noise needs them too),
        restricted to the actions ``mask`` ``(B, n)`` allows when there is one (core/masks.py)."""
        head = self.policy_head
        out = _linear(head.last_layer, features)
        if mask is not None:
            return masked_distribution(head, out, mask)
        return head.distribution(out, features) if isinstance(head, GSDEHead) else head.distribution(out)

    def reset_exploration(self, rows: int, step: int) -> None:
        head = self.policy_head
        if isinstance(head, GSDEHead) and (step == 0 if head.sample_freq == -1 else step % head.sample_freq == 0):
            head.reset_noise(rows)

    def dist(self, obs: Observation) -> ActionDistribution:
        obs, mask = split_mask(obs)
        return self.policy_distribution(self.encode(self.policy_body, self.preprocess(obs)), mask)

    def value(self, obs: Observation) -> torch.Tensor:
        if self.value_head is None:
            raise RuntimeError("this network has no value head (with_value=False)")
        obs = strip_mask(obs)
        body = self.policy_body if self.value_body is None else self.value_body
        return self.value_output(_linear(self.value_head, self.encode(body, self.preprocess(obs))).squeeze(-1))

    def value_layer(self) -> nn.Linear:
        if self.value_head is None:  # PopArt is made only with a value head
            raise RuntimeError("this network has no value head")
        return self.value_head

    def dist_and_value(self, obs: Observation) -> tuple[ActionDistribution, torch.Tensor]:
        """Both heads in one pass over the shared trunk (if any)."""
        obs, mask = split_mask(obs)
        x = self.preprocess(obs)
        features = self.encode(self.policy_body, x)
        dist = self.policy_distribution(features, mask)
        if self.value_head is None:
            return dist, torch.zeros(obs_rows(x), device=features.device)
        value_features = features if self.value_body is None else self.encode(self.value_body, x)
        return dist, self.value_output(_linear(self.value_head, value_features).squeeze(-1))

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        return self.policy_head.to_env(actions)


def mlp_sizes(cfg) -> tuple[int, ...]:
    """The encoder MLP's widths a config gives: ``hidden_sizes``, and without a recurrent core the
    ``post_core_sizes`` after them (nothing sits between the two then: one MLP, the speed paths' kind)."""
    post = tuple(getattr(cfg, "post_core_sizes", ()))
    return tuple(cfg.hidden_sizes) + (post if getattr(cfg, "recurrent", "none") == "none" else ())


def build_agent_kwargs(cfg, with_value: bool) -> dict:
    """The keyword arguments of :class:`ActorCritic` a config gives (its recurrent form takes them too)."""
    return dict(
        hidden_sizes=mlp_sizes(cfg),
        activation=cfg.activation,
        init=cfg.init,
        shared_trunk=cfg.shared_trunk,
        with_value=with_value,
        distribution=cfg.distribution,
        log_std_init=cfg.log_std_init,
        normalize_obs=cfg.normalize_obs,
        reward_scaler=RewardScaler(cfg.num_envs, cfg.gamma) if cfg.reward_norm == "scale" else None,
        popart=cfg.reward_norm == "popart",
        sde_sample_freq=cfg.sde_sample_freq,
        encoder=cfg.encoder,
        image_layout=cfg.image_layout,
        precision=getattr(cfg, "precision", "fp32"),
    )


def build_agent(cfg, observation_space: gym.Space, action_space: gym.Space, with_value: bool) -> ActorCritic:
    """The network a config asks for (a recurrent one: :func:`policygrad.core.user_network.build_network`)."""
    return ActorCritic(observation_space, action_space, **build_agent_kwargs(cfg, with_value))
