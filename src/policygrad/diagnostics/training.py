"""The estimators over training: :func:`diagnose_gradients` at several checkpoints of one run, and a
summary page (``report.md``, ``report.html``, ``training.json``) with each checkpoint's full report in a
folder of its own (``OUT/step_NNNNNNNNN/``).

The summary's table gives, per checkpoint, the policy's mean return and each estimator's noise scale
in episodes (tr(Cov) of one episode's gradient over |true gradient|^2: the batch size at which noise
equals signal); its figure draws the noise scales against the training step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policygrad.core.errors import UserInputError
from policygrad.diagnostics.diagnose import diagnose_gradients
from policygrad.diagnostics.report import BIAS_LEVEL, HTML_FILE, MD_FILE, choose, write_report
from policygrad.diagnostics.result import GradientDiagnosis
from policygrad.diagnostics.statistics import EstimatorStats
from policygrad.reporting.document import Block, Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from policygrad.reporting.figures import pyplot, save
from policygrad.run.files import write_text_atomic

SUMMARY_FILE, FILES_DIR = "training.json", "report_files"


def diagnose_checkpoints(run: str | Path, checkpoints: Sequence[str], **options: Any) -> list[GradientDiagnosis]:
    """:func:`diagnose_gradients` of ``run`` at each of ``checkpoints`` (names in its ``checkpoints/``)
    with the same ``options``, so that the same seeds draw the episodes at every checkpoint."""
    if not checkpoints:
        raise UserInputError("no checkpoint given")
    if len(set(checkpoints)) != len(checkpoints):
        raise UserInputError("a checkpoint is given twice")
    return [diagnose_gradients(run=run, checkpoint=name, **options) for name in checkpoints]


def _scale(s: EstimatorStats, batch_episodes: int) -> str:
    if math.isfinite(s.noise_scale):
        return f"{s.noise_scale:.3g}"
    floor = batch_episodes * s.noise_to_signal_floor
    return f"> {floor:.3g}" if math.isfinite(floor) else "n/a"


def _figure(diagnoses: Sequence[GradientDiagnosis], out: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    steps = [d.global_step or 0 for d in diagnoses]
    for i, name in enumerate(s.name for s in diagnoses[0].stats):
        values = [d.by_name(name).noise_scale for d in diagnoses]
        floors = [d.batch_episodes * d.by_name(name).noise_to_signal_floor for d in diagnoses]
        colour = plt.get_cmap("tab10")(i % 10)
        ax.plot(steps, [v if math.isfinite(v) else math.nan for v in values], "o-", color=colour, label=name)
        hidden = [(x, f) for x, v, f in zip(steps, values, floors) if not math.isfinite(v) and math.isfinite(f)]
        if hidden:  # no measurable signal: only a lower bound, drawn as an open triangle
            ax.plot(*zip(*hidden), "^", color=colour, markerfacecolor="none")
    ax.set_yscale("log")
    ax.set_xlabel("training step of the checkpoint")
    ax.set_ylabel("noise scale (episodes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return save(fig, out)


def training_conclusion(diagnoses: Sequence[GradientDiagnosis]) -> str:
    """The plain-words conclusion over training: the estimator each checkpoint's diagnosis picks (as its
    own report's conclusion does), whether that choice holds across training, and which estimators are
    established biased at some checkpoint."""
    target = diagnoses[0].cosine_target
    picks = []
    for d in diagnoses:
        best, _ = choose(d.stats)
        picks.append(best.name if best is not None else None)
    steps = [str(d.global_step or 0) for d in diagnoses]
    named = {p for p in picks if p is not None}
    if len(named) == 1 and None not in picks:
        parts = [f"Use {picks[0]}: at every checkpoint diagnosed (steps {', '.join(steps)}) it needs the fewest "
                 f"episodes per batch for a gradient with cosine {target:g} to the true one, among the estimators "
                 f"whose mean is not detectably off."]
    elif named:
        chosen = "; ".join(f"step {step}: {pick or 'none reaches it'}" for step, pick in zip(steps, picks))
        parts = [f"No one estimator is best throughout: the one needing the fewest episodes for cosine {target:g} "
                 f"(among those whose mean is not detectably off) changes over training ({chosen})."]
    else:
        parts = [f"No estimator reaches cosine {target:g} at a batch size these diagnoses can estimate, at any "
                 f"checkpoint."]
    biased: dict[str, list[str]] = {}
    for d, step in zip(diagnoses, steps):
        for name in choose(d.stats)[1]:
            biased.setdefault(name, []).append(step)
    if biased:
        parts.append("Established biased (bias p below " + f"{BIAS_LEVEL:g} after Holm): " + "; ".join(
            f"{name} at step{'s' if len(at) > 1 else ''} {', '.join(at)}" for name, at in biased.items())
            + ". Their noise scale in the table measures noise against their own mean, not against the true "
              "gradient: a small one does not make them better.")
    parts.append("Each checkpoint's own report gives the full table and figures.")
    return " ".join(parts)


def write_training_report(diagnoses: Sequence[GradientDiagnosis], out: str | Path, names: Sequence[str],
                          command: str | None = None) -> Path:
    """Each diagnosis's report in ``out/NAME/``, and the summary in ``out``; returns the summary's
    ``report.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for d, name in zip(diagnoses, names):
        write_report(d, out / name)
    first = diagnoses[0]
    estimators = [s.name for s in first.stats]
    rows = [[str(d.global_step), f"{d.return_mean:.4g}", *(_scale(s, d.batch_episodes) for s in d.stats)]
            for d, name in zip(diagnoses, names)]
    blocks: list[Block] = [
        Heading(f"Policy-gradient estimators over training: {first.env_id}", 1),
        Paragraph(f"The run's policy at {len(diagnoses)} checkpoints, each diagnosed on {first.batches} batches of "
                  f"{first.batch_episodes} episodes (seed {first.seed}, gamma {first.gamma:g})."),
    ]
    blocks += [Heading("Conclusion"), Paragraph(training_conclusion(diagnoses))]
    if command:
        blocks.append(Paragraph(f"Command: {command}"))
    blocks += [
        Heading("Over training"),
        Paragraph("Noise scale in episodes of each estimator (the batch size at which the noise of a batch's "
                  "gradient equals its signal; \"> x\": no signal measurable above the noise, x a lower bound), "
                  "and the mean return of the diagnosed episodes:"),
        Table(["step", "mean return", *estimators], rows),
        Bullets([f"{name}: its report in {name}/{MD_FILE} and {name}/{HTML_FILE}; critic: {d.critic}"
                 for d, name in zip(diagnoses, names)]),
        Heading("Figure"),
        Figure(_figure(diagnoses, out / FILES_DIR / "noise_scale.svg"),
               "Noise scale (episodes) of each estimator against the checkpoint's training step; open triangles: "
               "lower bounds where no signal was measurable."),
    ]
    write_text_atomic(out / MD_FILE, to_markdown(blocks, out))
    write_text_atomic(out / SUMMARY_FILE, json.dumps({"env_id": first.env_id, "checkpoints": list(names),
                                                      "steps": [d.global_step for d in diagnoses], "command": command},
                                                     indent=2) + "\n")
    html = out / HTML_FILE
    write_text_atomic(html, to_html(blocks, f"Gradient estimators over training on {first.env_id}"))
    return html
