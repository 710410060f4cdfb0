"""benchmarks/atari_fp32_ceiling.py's arithmetic count, without its timings: the FLOP of a frame through the
Nature CNN, counted from the layers the library builds, against the count written out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_the_ceiling_counts_the_nature_cnns_arithmetic_layer_by_layer():
    pytest.importorskip("stable_baselines3", reason="the compare extra: the benchmark also times SB3")
    from atari_fp32_ceiling import flops_per_frame

    from policygrad.core.encoders import NatureCNN
    from policygrad.core.images import image_layout

    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    encoder = NatureCNN(image_layout(space, "auto", "nature"))
    # multiply-adds of one 84x84x4 frame: outputs x (inputs per output), layer by layer
    conv1 = 20 * 20 * 32 * (4 * 8 * 8)
    conv2 = 9 * 9 * 64 * (32 * 4 * 4)
    conv3 = 7 * 7 * 64 * (64 * 3 * 3)
    linear = 3136 * 512
    forward, trained = flops_per_frame(encoder, torch.zeros((1, 4, 84, 84), dtype=torch.uint8))
    assert forward == 2 * (conv1 + conv2 + conv3 + linear)
    # backward: input and weight gradients (2x forward) for every layer but the first (weights only)
    assert trained == forward + 2 * (conv1 + 2 * (conv2 + conv3 + linear))
