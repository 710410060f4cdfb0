"""Policy and value networks: an MLP builder, weight-init schemes, the interface every network
offers the algorithms (PolicyNetwork) and the built-in ActorCritic module.

The default init follows the PPO implementation details (Engstrom et al. 2020; Huang et al. 2022):
orthogonal weights with gain sqrt(2) in hidden layers, 0.01 for the policy's last layer (a nearly
uniform initial policy) and 1.0 for the value's, zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.core.distributions import ActionDistribution, BoxHead, GSDEHead, make_head
from policygrad.core.errors import UserInputError
from policygrad.core.normalization import ObservationNormalizer, PopArt, RewardScaler

ACTIVATION_LAYERS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

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


_FUNCTIONAL = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu}


def activation_function(activation: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation as a plain function where there is one (a module call costs more than tanh)."""
    return _FUNCTIONAL.get(type(activation), activation)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.linear(x, layer.weight, layer.bias)


def run_mlp(body: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``body(x)`` without a module call per layer (on small networks the calls cost more than the
    arithmetic). The numbers are exactly ``body(x)``'s."""
    for layer in body:
        x = _linear(layer, x) if type(layer) is nn.Linear else activation_function(layer)(x)
    return x


def mlp(in_features: int, hidden_sizes: tuple[int, ...], activation: str) -> nn.Sequential:
    """Linear + activation for each hidden size; its output has ``hidden_sizes[-1]`` features."""
    layers: list[nn.Module] = []
    for width in hidden_sizes:
        layers += [nn.Linear(in_features, width), ACTIVATION_LAYERS[activation]()]
        in_features = width
    return nn.Sequential(*layers)


def init_layer(layer: nn.Linear, scheme: str, gain: float) -> None:
    """Initialise one linear layer in place; biases start at zero except for ``torch-default``."""
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
    nn.init.zeros_(layer.bias)


def init_mlp(body: nn.Sequential, scheme: str) -> None:
    for layer in body:
        if isinstance(layer, nn.Linear):
            init_layer(layer, scheme, HIDDEN_GAIN)


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

    def observe(self, obs: torch.Tensor) -> None:
        """Training collectors show every observation here first: it updates the running statistics
        of observation normalization (evaluation never calls it, so they stay frozen there)."""
        if self.obs_normalizer is not None:
            self.obs_normalizer.update(obs)

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
    """A policy pi(a|s) and, optionally, a state-value function V(s).

    Shapes: ``obs`` ``(B, *obs_shape)`` -> ``dist`` over ``(B, *action_shape)``, ``value`` ``(B,)``.
    With ``shared_trunk`` the two heads sit on one MLP; otherwise each has its own (the default:
    a value loss cannot then disturb the policy's features).
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
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        if normalize_obs and not isinstance(observation_space, gym.spaces.Box):
            raise UserInputError(f"normalize_obs=True needs Box observations, not {observation_space}")
        self.obs_normalizer = (ObservationNormalizer(observation_space.shape)
                               if normalize_obs and isinstance(observation_space, gym.spaces.Box) else None)
        self.reward_scaler = reward_scaler
        n_in = obs_size(observation_space)
        n_feat = hidden_sizes[-1]
        self.shared_trunk = shared_trunk
        self.policy_body = mlp(n_in, hidden_sizes, activation)
        self.policy_head = make_head(action_space, n_feat, distribution, sde_sample_freq)
        self.value_body: nn.Sequential | None = None
        self.value_head: nn.Linear | None = None
        if with_value:
            self.value_body = None if shared_trunk else mlp(n_in, hidden_sizes, activation)
            self.value_head = nn.Linear(n_feat, 1)
        self.popart = PopArt() if popart and self.value_head is not None else None
        init_mlp(self.policy_body, init)
        init_layer(self.policy_head.last_layer, init, POLICY_GAIN)
        if log_std_init != 0.0:
            if not isinstance(self.policy_head, (BoxHead, GSDEHead)):  # the heads with init_log_std
                raise UserInputError(f"log_std_init={log_std_init} needs a Gaussian or tanh head; "
                                     f"{action_space} has no std to set")
            self.policy_head.init_log_std(log_std_init)
        if self.value_body is not None:
            init_mlp(self.value_body, init)
        if self.value_head is not None:
            init_layer(self.value_head, init, VALUE_GAIN)

    @property
    def has_value(self) -> bool:
        return self.value_head is not None

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations ``(B, *obs_shape)`` as float features ``(B, n_in)``."""
        if isinstance(self.observation_space, gym.spaces.Discrete):
            return nn.functional.one_hot(obs.long() - int(self.observation_space.start),
                                         int(self.observation_space.n)).float()
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs.float())
        if obs.dtype == torch.float32 and obs.dim() == 2:  # already features: skip two no-op calls
            return obs
        return obs.float().reshape(obs.shape[0], -1)

    def policy_distribution(self, features: torch.Tensor) -> ActionDistribution:
        """The action distribution from the policy's last hidden features (gSDE's noise needs them too)."""
        head = self.policy_head
        out = _linear(head.last_layer, features)
        return head.distribution(out, features) if isinstance(head, GSDEHead) else head.distribution(out)

    def reset_exploration(self, rows: int, step: int) -> None:
        head = self.policy_head
        if isinstance(head, GSDEHead) and (step == 0 if head.sample_freq == -1 else step % head.sample_freq == 0):
            head.reset_noise(rows)

    def dist(self, obs: torch.Tensor) -> ActionDistribution:
        return self.policy_distribution(run_mlp(self.policy_body, self.preprocess(obs)))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        if self.value_head is None:
            raise RuntimeError("this network has no value head (with_value=False)")
        body = self.policy_body if self.value_body is None else self.value_body
        return self.value_output(_linear(self.value_head, run_mlp(body, self.preprocess(obs))).squeeze(-1))

    def value_layer(self) -> nn.Linear:
        assert self.value_head is not None  # PopArt is made only with a value head
        return self.value_head

    def dist_and_value(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        """Both heads in one pass over the shared trunk (if any)."""
        x = self.preprocess(obs)
        features = run_mlp(self.policy_body, x)
        dist = self.policy_distribution(features)
        if self.value_head is None:
            return dist, torch.zeros(x.shape[0], device=x.device)
        value_features = features if self.value_body is None else run_mlp(self.value_body, x)
        return dist, self.value_output(_linear(self.value_head, value_features).squeeze(-1))

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        return self.policy_head.to_env(actions)


def build_agent(cfg, observation_space: gym.Space, action_space: gym.Space, with_value: bool) -> ActorCritic:
    """The network a config asks for."""
    return ActorCritic(
        observation_space,
        action_space,
        hidden_sizes=tuple(cfg.hidden_sizes),
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
    )
