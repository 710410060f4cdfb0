"""The ``precision`` field: the arithmetic of the convolutional encoders' forward passes.

``fp32`` (the default) computes everything in float32. ``bf16`` runs the built-in network's image encoder
(the Nature CNN or the IMPALA ResNet, its last linear layer included) under
``torch.autocast(dtype=torch.bfloat16)``: its convolutions and linear layers take bfloat16 inputs and
weights and accumulate in float32, which a CPU with native bf16 instructions (AVX-512 BF16, AMX) or a
GPU computes faster (PPO on Pong, AVX-512 BF16: 1.44x the steps per CPU second of fp32,
benchmarks/results/atari_vs_sb3.md). Acting and evaluation compute so too, so that the policy that acts
is the one the update differentiates (PPO's ratio is then 1 before the first step). Only the encoder:
its features are cast back to float32 before the policy and value heads, so the logits, the Gaussian's
parameters, V(s), the log-probabilities, entropies and every loss are float32 (a probability ratio of
bf16 log-probabilities would move by bf16's rounding, 2^-8 of the logits, before any learning).
Parameters, optimizer state and checkpoints stay float32: autocast only casts copies for each operation.
What it does to the gradients and to learning: benchmarks/results/bf16.md.

The MLP encoder refuses it (its networks are small, and its speed paths in ``fast/`` are float32), and
so does a network of your own (put ``torch.autocast`` inside its ``forward`` instead).
"""

from __future__ import annotations

import functools
import warnings

import torch

from policygrad.core.config import PRECISIONS
from policygrad.core.errors import UserInputError

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype the encoder's autocast computes in, or None for plain float32."""
    if precision not in AUTOCAST_DTYPES:
        raise UserInputError(f"precision={precision!r} is invalid: expected one of {' | '.join(PRECISIONS)}")
    return AUTOCAST_DTYPES[precision]


def refuse_unsupported(precision: str, network: str) -> None:
    """UserInputError naming ``precision`` unless it can apply to ``network``: ``cnn`` (a built-in network
    with an image encoder), ``mlp`` (vector observations only) or ``user`` (``network=module:Class``)."""
    if precision == "fp32" or network == "cnn":
        return
    if network == "user":
        raise UserInputError(f"precision={precision!r} applies to the built-in network's image encoder, not to a "
                             "network of your own: use precision='fp32' and torch.autocast inside its forward")
    raise UserInputError(f"precision={precision!r} needs image observations and a convolutional encoder (nature | "
                         "impala): it speeds up convolutions, and this network is an MLP; use precision='fp32'")


@functools.cache
def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's check: AVX-512 BF16 or AMX); without it, oneDNN
    emulates bf16 with float32 instructions and conversions, slower than float32 itself."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the private check: read the CPU's flags
        try:
            with open("/proc/cpuinfo") as f:
                flags = f.read()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def warn_if_slow(precision: str, device_type: str) -> None:
    """Warn once per process when ``precision`` will run slower than float32 here (a CPU without native
    bf16, a GPU without bf16)."""
    if precision != "bf16":
        return
    if device_type == "cpu" and not native_bf16_cpu():
        warnings.warn("precision='bf16': this CPU has no native bf16 instructions (AVX-512 BF16 or AMX), so "
                      "bf16 is emulated and the network will be slower than with precision='fp32'", stacklevel=2)
    elif device_type == "cuda" and not torch.cuda.is_bf16_supported():
        warnings.warn("precision='bf16': this GPU has no native bf16 (before Ampere), so the network will be "
                      "slower than with precision='fp32'", stacklevel=2)
