"""Where and how reproducibly a run computes: device choice, seeding, thread count."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is not available is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' is not available on this machine (torch.cuda.is_available() is False)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={name!r} is invalid: expected auto | cpu | cuda | mps")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch from the run's one seed (environments are seeded at reset)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
