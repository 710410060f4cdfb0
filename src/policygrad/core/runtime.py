"""Where and how reproducibly a run computes: device choice, seeding, thread count."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from policygrad.core.errors import UserInputError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is not available is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device='cuda' is not available on this machine (torch.cuda.is_available() is False)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserInputError("device='mps' is not available on this machine")
    if name not in ("cpu", "cuda", "mps"):
        raise UserInputError(f"device={name!r} is invalid: expected auto | cpu | cuda | mps")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch from the run's one seed (environments are seeded at reset)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded_sampling(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Inside, torch draws (action sampling) on the CPU and on ``device`` come from generators seeded
    with ``seed``; on leaving, the caller's random state is put back, as if nothing had drawn."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        mps_state = torch.mps.get_rng_state() if device.type == "mps" else None
        if mps_state is not None:
            torch.mps.manual_seed(seed)
        try:
            yield
        finally:
            if mps_state is not None:
                torch.mps.set_rng_state(mps_state)
