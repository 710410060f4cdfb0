"""Where a pixel update's time goes: the Nature CNN's forward + backward + Adam step on a minibatch of
uint8 frames, in the default (NCHW) memory layout and in channels-last, from HWC and from CHW frames.

policygrad's encoders (core/encoders.py) scale the pixels inside and run the convolutions on a
channels-last tensor: an HWC frame permuted to NCHW already has those strides (no copy); a CHW frame
costs one copy. The weights stay in the default layout (safetensors and the flat optimizers want
contiguous parameters); converting them too is measured as ``weights too``.

    python benchmarks/pixels_layout.py [--batch 256] [--threads 1] [--reps 7]

Writes benchmarks/results/pixels_layout.md (median of ``reps`` steps after one warm-up, each layout
interleaved with the others so that load on the machine hits them alike).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from policygrad.core.encoders import NatureCNN
from policygrad.core.images import ImageLayout

RESULTS = Path(__file__).parent / "results" / "pixels_layout.md"


class DefaultLayout(NatureCNN):
    """SB3's way: the frame made contiguous NCHW before the convolutions."""

    def pixels(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs if self.layout.channels_first else obs.permute(0, 3, 1, 2)
        return (x.float() / 255.0).contiguous()


def network(kind: str, channels_first: bool) -> nn.Module:
    torch.manual_seed(0)
    layout = ImageLayout(channels_first, 4, 84, 84, 255.0)
    encoder = DefaultLayout(layout) if kind == "default" else NatureCNN(layout)
    net = nn.Sequential(encoder, nn.Linear(512, 7))
    if kind == "weights too":
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [(kind, first) for first in (False, True) for kind in ("default", "channels-last", "weights too")]
    nets = {case: network(*case) for case in cases}
    optims = {case: torch.optim.Adam(nets[case].parameters(), lr=2.5e-4, eps=1e-5) for case in cases}
    frames = {first: torch.randint(0, 256, (args.batch, 4, 84, 84) if first else (args.batch, 84, 84, 4),
                                   dtype=torch.uint8) for first in (False, True)}
    times: dict[tuple[str, bool], list[float]] = {case: [] for case in cases}
    for rep in range(args.reps + 1):
        for case in cases:
            net, optim = nets[case], optims[case]
            start = time.perf_counter()
            loss = net(frames[case[1]]).square().mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            if rep:  # the first is a warm-up
                times[case].append(time.perf_counter() - start)
    lines = [
        "# Nature CNN update: memory layout (benchmarks/pixels_layout.py)",
        "",
        f"Forward + backward + Adam step on {args.batch} uint8 frames 4x84x84 (scaled inside), "
        f"{args.threads} torch thread(s), median of {args.reps}; {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}.",
        "",
        "| frames | layout | ms per step | vs default |",
        "|---|---|---:|---:|",
    ]
    for case in cases:
        ms = statistics.median(times[case]) * 1000
        base = statistics.median(times[("default", case[1])]) * 1000
        lines.append(f"| {'CHW' if case[1] else 'HWC'} | {case[0]} | {ms:.0f} | {base / ms:.2f}x |")
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
