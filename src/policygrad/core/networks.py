"""Policy and value networks: an MLP builder, weight-init schemes and the ActorCritic module.

The default init follows the PPO implementation details (Engstrom et al. 2020; Huang et al. 2022):
orthogonal weights with gain sqrt(2) in hidden layers, 0.01 for the policy's last layer (a nearly
uniform initial policy) and 1.0 for the value's, zero biases.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from policygrad.core.distributions import ActionDistribution, make_head
from policygrad.core.normalization import ObservationNormalizer, PopArt, RewardScaler

ACTIVATION_LAYERS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}

# acting_forward fuses policy and value MLPs up to this width (beyond it the block-diagonal products
# would double real arithmetic rather than save call overhead)
FUSE_MAX_WIDTH = 256
# ... and runs tanh layers as sigmoids (a third of the cost on the CPU) once a snapshot will act on
# this many observations, enough to repay the five extra operations of preparing its weights
SIGMOID_MIN_ROWS = 256

HIDDEN_GAIN = math.sqrt(2)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0


def obs_size(space: gym.Space) -> int:
    """Number of inputs an MLP needs for one observation of ``space`` (flattened; one-hot for Discrete)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        return int(np.prod(space.shape))
    raise ValueError(f"observation space {space} is not supported: use Box or Discrete observations")


_FUNCTIONAL = {nn.Tanh: torch.tanh, nn.ReLU: torch.relu}


def _functional(activation: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation as a plain function where there is one (a module call costs more than tanh)."""
    return _FUNCTIONAL.get(type(activation), activation)


def _linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.linear(x, layer.weight, layer.bias)


def _run_mlp(body: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``body(x)`` without a module call per layer (on small networks the calls cost more than the
    arithmetic). The numbers are exactly ``body(x)``'s."""
    for layer in body:
        x = _linear(layer, x) if type(layer) is nn.Linear else _functional(layer)(x)
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
        raise ValueError(f"init={scheme!r} is invalid: expected orthogonal | xavier | kaiming | torch-default")
    nn.init.zeros_(layer.bias)


def init_mlp(body: nn.Sequential, scheme: str) -> None:
    for layer in body:
        if isinstance(layer, nn.Linear):
            init_layer(layer, scheme, HIDDEN_GAIN)


class ActorCritic(nn.Module):
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
    ) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        if normalize_obs and not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"normalize_obs=True needs Box observations, not {observation_space}")
        self.obs_normalizer = ObservationNormalizer(observation_space.shape) if normalize_obs else None
        self.reward_scaler = reward_scaler
        n_in = obs_size(observation_space)
        n_feat = hidden_sizes[-1]
        self.shared_trunk = shared_trunk
        self.policy_body = mlp(n_in, hidden_sizes, activation)
        self.policy_head = make_head(action_space, n_feat, distribution)
        self.value_body: nn.Sequential | None = None
        self.value_head: nn.Linear | None = None
        if with_value:
            self.value_body = None if shared_trunk else mlp(n_in, hidden_sizes, activation)
            self.value_head = nn.Linear(n_feat, 1)
        self.popart = PopArt() if popart and self.value_head is not None else None
        init_mlp(self.policy_body, init)
        init_layer(self.policy_head.last_layer, init, POLICY_GAIN)
        if log_std_init != 0.0:
            if not hasattr(self.policy_head, "init_log_std"):
                raise ValueError(f"log_std_init={log_std_init} needs a Gaussian or tanh head; "
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

    def dist(self, obs: torch.Tensor) -> ActionDistribution:
        head = self.policy_head
        return head.distribution(_linear(head.last_layer, _run_mlp(self.policy_body, self.preprocess(obs))))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        if self.value_head is None:
            raise RuntimeError("this network has no value head (with_value=False)")
        body = self.policy_body if self.value_body is None else self.value_body
        return self._value_output(_linear(self.value_head, _run_mlp(body, self.preprocess(obs))).squeeze(-1))

    def _value_output(self, head_output: torch.Tensor) -> torch.Tensor:
        """V(s) in the environment's units (PopArt's head outputs a normalized value)."""
        return head_output if self.popart is None else self.popart.denormalize(head_output)

    def normalize_values(self, values: torch.Tensor) -> torch.Tensor:
        """Values or value targets in the units the value loss uses: normalized under PopArt, else as given."""
        return values if self.popart is None else self.popart.normalize(values)

    def update_value_stats(self, targets: torch.Tensor) -> None:
        """Before a batch's value updates: PopArt merges its targets (and keeps V(s) unchanged)."""
        if self.popart is not None:
            self.popart.update(targets, self.value_head)

    def dist_and_value(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        """Both heads in one pass over the shared trunk (if any)."""
        x = self.preprocess(obs)
        features = _run_mlp(self.policy_body, x)
        dist = self.policy_head.distribution(_linear(self.policy_head.last_layer, features))
        if self.value_head is None:
            return dist, torch.zeros(x.shape[0], device=x.device)
        value_features = features if self.value_body is None else _run_mlp(self.value_body, x)
        return dist, self._value_output(_linear(self.value_head, value_features).squeeze(-1))

    def forward(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        """``net(obs)`` is ``dist_and_value(obs)``: the action distribution and V(s) ``(B,)``."""
        return self.dist_and_value(obs)

    @torch.no_grad()
    def acting_forward(self, with_value: bool = True, expected_rows: int = 0) -> Callable[
            [torch.Tensor], tuple[ActionDistribution, torch.Tensor | None]]:
        """``dist_and_value`` for acting, with the weights of this moment: valid until they change or
        ``acting_forward`` is called again (collectors take one per collection).

        When acting, per-call overhead outweighs arithmetic, so the policy and value MLPs run as one
        MLP whose weights are the two side by side (the first layers stacked, the later ones
        block-diagonal): half the matrix products and no module calls. The fused weights live in
        buffers laid out once; taking a new snapshot is a single copy of every parameter into them.
        ``expected_rows``: how many observations the snapshot will act on in all (a collector's
        ``num_steps * num_envs``); from SIGMOID_MIN_ROWS on, tanh layers run as sigmoids (see
        :meth:`_fused_snapshot`), which pays for the few extra operations of the snapshot.
        The numbers equal ``dist_and_value``'s up to float rounding. Without ``with_value`` (or a
        value head) the value returned is None. Wide networks (> FUSE_MAX_WIDTH units), where the
        block-diagonal products would waste real arithmetic, use ``dist_and_value`` itself.
        """
        value = with_value and self.value_head is not None
        if max(layer.out_features for layer in self.policy_body if isinstance(layer, nn.Linear)) > FUSE_MAX_WIDTH:
            if value:
                return self.dist_and_value
            return lambda obs: (self.dist(obs), None)
        layers, head_weight, head_bias, n_policy = self._fused_snapshot(value, expected_rows >= SIGMOID_MIN_ROWS)
        distribution, value_output = self.policy_head.distribution, self._value_output

        def forward(obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor | None]:
            x = self.preprocess(obs)
            for weight, bias, act in layers:
                x = act(nn.functional.linear(x, weight, bias))
            out = nn.functional.linear(x, head_weight, bias=head_bias)
            if not value:
                return distribution(out), None
            return distribution(out[:, :n_policy]), value_output(out[:, n_policy])

        return forward

    @torch.no_grad()
    def fused_acting_weights(self):
        """A snapshot of the fused policy-and-value weights that ``acting_forward`` uses, tanh layers
        in their sigmoid form (see :meth:`_fused_snapshot`): ``(weight, bias, activation)`` layers
        (``torch.sigmoid_`` or the layer's own activation), the head's weight and bias (policy outputs
        first, V(s) last) and the policy's output count. For acting outside torch
        (:mod:`policygrad.fast.numpy_acting`): the next snapshot rewrites these buffers in place, so views
        of them hold this snapshot's weights only until then."""
        return self._fused_snapshot(True, True)

    def _fused_snapshot(self, value: bool, sigmoid: bool):
        """Copy the parameters into the fused layout (built on first use, per device and dtype);
        returns its ``(weight, bias, activation)`` layers, head weight and bias, and policy width."""
        cache = self.__dict__.setdefault("_fused_layouts", {})
        like = self.policy_head.last_layer.weight
        layout = cache.get(value)
        if layout is None or layout["device"] != like.device or layout["dtype"] != like.dtype:
            layout = cache[value] = self._fused_layout(value)
        torch._foreach_copy_(layout["dst"], layout["src"])  # one call for every parameter
        if not (sigmoid and layout["tanh"]):
            return layout["layers"], layout["head_weight"], layout["head_bias"], layout["n_policy"]
        # tanh(z) = 2 sigmoid(2z) - 1, and torch's sigmoid costs a third of its tanh on the CPU.
        # With s_k = sigmoid(2 z_k) in place of h_k = tanh(z_k) = 2 s_k - 1, each layer after a
        # hidden one takes (2W) s + (b - W 1): the factors and offsets go into the weights here
        # (block-diagonal zeros add nothing to the row sums), and acting costs sigmoids only.
        weights = [w for w, _, _ in layout["layers"]] + [layout["head_weight"]]
        biases = [b for _, b, _ in layout["layers"]] + [layout["head_bias"]]
        torch._foreach_sub_(biases[1:], [w.sum(1) for w in weights[1:]])
        scale = [2.0] + [4.0] * (len(weights) - 2) + [2.0]
        torch._foreach_mul_(weights, scale)
        torch._foreach_mul_(biases[:-1], 2.0)
        layers = [(weight, bias, torch.sigmoid_) for weight, bias, _ in layout["layers"]]
        return layers, layout["head_weight"], layout["head_bias"], layout["n_policy"]

    def _fused_layout(self, value: bool) -> dict:
        """Buffers for the fused MLP (``(out, in)`` weights, zero off the diagonal blocks) and the
        (buffer view, parameter) pairs a snapshot copies."""
        like = self.policy_head.last_layer.weight
        zeros = functools.partial(torch.zeros, device=like.device, dtype=like.dtype)
        dst: list[torch.Tensor] = []
        src: list[torch.Tensor] = []

        def place(buffer: torch.Tensor, parts: list[torch.Tensor], diagonal: bool) -> torch.Tensor:
            row = col = 0
            for part in parts:
                rows = part.shape[0]
                cols = part.shape[1] if part.dim() == 2 else 0
                view = buffer[row:row + rows] if part.dim() == 1 else (
                    buffer[row:row + rows, col:col + cols] if diagonal else buffer[row:row + rows])
                dst.append(view)
                src.append(part)
                row, col = row + rows, col + cols
            return buffer

        separate = value and self.value_body is not None
        policy_linear = [m for m in self.policy_body if isinstance(m, nn.Linear)]
        value_linear = [m for m in self.value_body if isinstance(m, nn.Linear)] if separate else []
        activations = [_functional(m) for m in self.policy_body if not isinstance(m, nn.Linear)]
        layers = []
        for k, (linear, act) in enumerate(zip(policy_linear, activations)):
            parts = [linear] + ([value_linear[k]] if separate else [])
            out_features = sum(p.out_features for p in parts)
            in_features = sum(p.in_features for p in parts) if k > 0 else linear.in_features
            weight = place(zeros(out_features, in_features), [p.weight for p in parts], diagonal=k > 0)
            bias = place(zeros(out_features), [p.bias for p in parts], diagonal=False)
            layers.append((weight, bias, act))
        heads = [self.policy_head.last_layer] + ([self.value_head] if value else [])
        in_features = sum(h.in_features for h in heads) if separate else heads[0].in_features
        head_weight = place(zeros(sum(h.out_features for h in heads), in_features), [h.weight for h in heads],
                            diagonal=separate)
        head_bias = place(zeros(sum(h.out_features for h in heads)), [h.bias for h in heads], diagonal=False)
        tanh = all(type(m) is nn.Tanh for m in self.policy_body if not isinstance(m, nn.Linear))
        return {"device": like.device, "dtype": like.dtype, "dst": dst, "src": src, "layers": layers, "tanh": tanh,
                "head_weight": head_weight, "head_bias": head_bias,
                "n_policy": self.policy_head.last_layer.out_features}

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions ``(B, *action_shape)`` for ``obs``: the mode when ``deterministic``, else a sample.
        (Said explicitly every time: training samples, evaluation usually takes the mode.)"""
        dist = self.dist(obs)
        return dist.mode() if deterministic else dist.sample()

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Policy actions as the environment takes them (NumPy)."""
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
    )
