"""The diagnosis on disk: ``gradients.csv`` (one row per estimator, full precision), ``report.md`` (the
table and what it means), ``report.html`` (the same page, self-contained: figures inlined, no script,
no external URL, rendered by :mod:`policygrad.reporting.document`), ``report_files/*.svg`` and
``diagnosis.json`` (the settings). Nothing depends on the clock: the same diagnosis writes the same
files."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from policygrad.diagnostics.plots import cosine_plot, variance_plot
from policygrad.diagnostics.result import GradientDiagnosis
from policygrad.diagnostics.statistics import EstimatorStats
from policygrad.reporting.document import Block, Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from policygrad.reporting.formatting import format_number, format_p
from policygrad.run.files import write_text_atomic

CSV_FILE, MD_FILE, HTML_FILE, JSON_FILE, FILES_DIR = ("gradients.csv", "report.md", "report.html", "diagnosis.json",
                                                      "report_files")
CSV_COLUMNS = ("estimator", "unbiased", "reference", "mean_norm", "trace_cov", "noise_to_signal",
               "noise_to_signal_floor", "noise_scale_episodes", "cosine", "cosine_sd", "mean_cosine", "relative_bias",
               "bias_p", "bias_p_holm", "episodes_to_cosine")


def _num(x: float, digits: int = 3) -> str:
    return format_number(x, digits)


def table_header(target: float) -> list[str]:
    return ["estimator", "unbiased", "|mean gradient|", "tr(Cov)", "noise/signal", "noise scale (episodes)",
            "cosine, one batch", "cos(mean, reference)", "relative bias", "bias p (Holm)",
            f"episodes for cosine {target:g}"]


def table_row(s: EstimatorStats, batch_episodes: int, target: float) -> list[str]:
    floor = s.noise_to_signal_floor
    if math.isfinite(s.noise_to_signal):
        nsr, scale = _num(s.noise_to_signal), _num(s.noise_scale)
    else:  # no signal measurable above the noise: the ratio is at least tr(C) / |mean|^2
        nsr, scale = f"> {_num(floor)}", f"> {_num(batch_episodes * floor)}"
    needed = s.episodes_to_cosine
    if math.isfinite(needed):
        episodes = _num(needed)
    elif s.unbiased and math.isfinite(floor):
        c2 = target ** 2
        episodes = f"> {_num(batch_episodes * floor * c2 / (1 - c2))}"
    else:
        episodes = "never (its mean is off)" if math.isfinite(s.mean_cosine) else "n/a"
    return [s.name + (" (reference)" if s.reference else ""), "yes" if s.unbiased else "no", _num(s.mean_norm),
            _num(s.trace_cov), nsr, scale, f"{s.cosine:.2f} ± {s.cosine_sd:.2f}", _num(s.mean_cosine),
            _num(s.relative_bias, 2), "-" if s.reference else format_p(s.bias_p_holm), episodes]


BIAS_LEVEL = 0.01  # a bias p below this (Holm-corrected): the estimator's mean is not the policy gradient


def choose(stats: list[EstimatorStats]) -> tuple[EstimatorStats | None, list[str]]:
    """The estimator to use at this policy (the fewest episodes for the target cosine among those whose
    mean is not detectably off; None if none reaches it) and the names of those established biased."""
    biased = [s.name for s in stats if not s.reference and s.bias_p_holm < BIAS_LEVEL]
    usable = [s for s in stats if s.name not in biased and math.isfinite(s.episodes_to_cosine)]
    return (min(usable, key=lambda s: s.episodes_to_cosine) if usable else None), biased


def conclusion(stats: list[EstimatorStats], batches: int, target: float) -> str:
    """The plain-words conclusion of a diagnosis: which estimator to use at this policy (the fewest
    episodes for the target cosine among those whose mean is not detectably off), which are
    established to be biased, and what one policy's measurement does not establish."""
    best, biased = choose(stats)
    parts = []
    if best is not None:
        ref = next((s for s in stats if s.reference), None)
        versus = (f"; the reference, {ref.name}, needs {_num(ref.episodes_to_cosine)}"
                  if ref is not None and ref is not best and math.isfinite(ref.episodes_to_cosine) else "")
        parts.append(f"Use {best.name} at this policy: of the estimators whose mean is not detectably off, it needs "
                     f"the fewest episodes per batch, {_num(best.episodes_to_cosine)}, for a gradient with cosine "
                     f"{target:g} to the true one{versus}.")
    else:
        parts.append(f"No estimator reaches cosine {target:g} at a batch size this diagnosis can estimate: the "
                     f"gradient is lost in the noise at this policy.")
    if biased:
        parts.append(f"Established: {', '.join(biased)} {'is' if len(biased) == 1 else 'are'} biased here (bias p "
                     f"below {BIAS_LEVEL:g} after Holm): {'its' if len(biased) == 1 else 'their'} mean is not the "
                     f"policy gradient.")
    unsure = [s.name for s in stats if not s.reference and s.name not in biased and not s.unbiased]
    if unsure:
        parts.append(f"Not established: that {', '.join(unsure)} {'is' if len(unsure) == 1 else 'are'} unbiased; "
                     f"no bias was detected over {batches} batches, which is not proof of none.")
    parts.append("This is one policy: at another point of training the order can change (diagnose a checkpoint "
                 "from later in the run to see).")
    return " ".join(parts)


def build_blocks(d: GradientDiagnosis, files: Path, command: str | None) -> list[Block]:
    episodes = d.batches * d.batch_episodes
    ref = d.reference
    step = f" at step {d.global_step}" if d.global_step else ""
    blocks: list[Block] = [
        Heading(f"Policy-gradient estimators on {d.environment}: {d.source}{step}", 1),
        Paragraph(f"{d.batches} independent batches of {d.batch_episodes} episodes ({episodes} episodes, mean "
                  f"return {d.return_mean:.4g} ± {d.return_sd:.3g}, mean length {d.length_mean:.4g} steps), played "
                  f"by one fixed policy; every estimator's gradient computed on the same episodes, over the "
                  f"actor's {int(d.mean_gradients[ref.name].numel())} parameters; gamma {d.gamma:g}, seed {d.seed}."),
    ]
    blocks += [Heading("Conclusion"), Paragraph(conclusion(d.stats, d.batches, d.cosine_target))]
    if command:
        blocks.append(Paragraph(f"Command: {command}"))
    blocks += [
        Heading("Estimators"),
        Table(table_header(d.cosine_target), [table_row(s, d.batch_episodes, d.cosine_target) for s in d.stats]),
        Bullets([
            "A batch's gradient is (1/M) sum over its M episodes of sum_t w_t grad log pi(a_t|s_t); w_t is the "
            "estimator's weight (total: G_0; reward_to_go: gamma^t G_t; the baselines subtract b from G_t; the "
            "critic's estimators: gamma^t times their advantage).",
            "tr(Cov): the trace of the covariance of one batch's gradient over the batches; noise/signal: tr(Cov) / "
            "|mean|^2, the squared mean corrected for its own noise (\"> x\": no signal measurable above the noise, "
            "x a lower bound); noise scale: the same per episode, the batch size at which noise equals signal "
            "(McCandlish et al. 2018's B_simple, in episodes).",
            f"Reference: {ref.name}, the unbiased estimator with the smallest tr(Cov); cosine, one batch: mean ± sd "
            f"over batches of the cosine of a batch's gradient with the reference's mean over the other "
            f"{d.batches - 1} batches.",
            "cos(mean, reference) and relative bias |mean - reference mean| / |reference mean|: from the paired "
            "differences on the same episodes, corrected for their noise; bias p: sign-flip test of a zero mean "
            "difference from the reference, Holm-corrected across the estimators (small, say below 0.01: the "
            "estimator's mean is not the policy gradient; gradients.csv also has the raw p).",
            f"Episodes for cosine {d.cosine_target:g}: the batch size at which a batch's gradient has that expected "
            "cosine with the true gradient, from the model rho / sqrt(1 + noise scale / m) (rho = 1 for the unbiased "
            "estimators, cos(mean, reference) for the others; never when rho is below the target).",
            *d.notes,
        ]),
        Heading("Figures"),
        Figure(variance_plot(d.stats, files / "variance.svg"),
               "Variance of each estimator's batch gradient (left) and its noise-to-signal ratio (right); one "
               "colour per estimator, as in the cosine figure; hatched: those that bootstrap from the critic."),
        Figure(cosine_plot(d.stats, files / "cosine.svg", d.cosine_target),
               "Cosine of a batch's gradient with the true gradient against the batch size: points measured "
               "(disjoint batches of the episodes against the reference from all the others, divided by that "
               "reference's own expected cosine), lines the model; dashed: the target cosine."),
    ]
    return blocks


def write_report(diagnosis: GradientDiagnosis, out: str | Path, command: str | None = None) -> Path:
    """Write the diagnosis into the directory ``out`` (created); returns the path of ``report.html``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for s in diagnosis.stats:
        writer.writerow([s.name, s.unbiased, s.reference, s.mean_norm, s.trace_cov, s.noise_to_signal,
                         s.noise_to_signal_floor, s.noise_scale, s.cosine, s.cosine_sd, s.mean_cosine,
                         s.relative_bias, s.bias_p, s.bias_p_holm, s.episodes_to_cosine])
    write_text_atomic(out / CSV_FILE, text.getvalue())
    settings = {**diagnosis.settings(), "estimators": [s.name for s in diagnosis.stats], "command": command}
    write_text_atomic(out / JSON_FILE, json.dumps(settings, indent=2, default=str) + "\n")
    blocks = build_blocks(diagnosis, out / FILES_DIR, command)
    write_text_atomic(out / MD_FILE, to_markdown(blocks, out))
    html = out / HTML_FILE
    write_text_atomic(html, to_html(blocks, f"Gradient estimators on {diagnosis.env_id}"))
    return html
