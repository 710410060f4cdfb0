"""A tuning's report: ``report.md`` and a self-contained ``report.html`` in its directory, with the same
blocks and renderers as a study's (:mod:`policygrad.reporting.document`): the setup, the best config, the
re-evaluation of the top trials on fresh seeds and whether their order holds, the importance of each
hyperparameter (Optuna's default evaluator, PED-ANOVA: no scikit-learn needed), the optimisation
history, and every trial. Read from ``tune.json``, ``trials.csv``, ``reeval.csv`` and the Optuna study.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

from policygrad.core.config import user_fields
from policygrad.reporting import conclusions
from policygrad.reporting.choices import MIN_SEEDS
from policygrad.reporting.document import Block, Bullets, Figure, Heading, Paragraph, Table, to_html, to_markdown
from policygrad.reporting.figures import no_data, pyplot, save
from policygrad.reporting.formatting import format_p
from policygrad.reporting.statistics import ALPHA, pairwise, rank_correlation
from policygrad.run.files import write_text_atomic
from policygrad.studies.report import FILES_DIR, REPORT_HTML, REPORT_MD
from policygrad.tuning.spec import (
    BEST_PRESET,
    OBJECTIVES,
    PRUNER_STARTUP,
    REEVAL_FILE,
    TRIALS_FILE,
    TuneSpec,
    open_storage,
    read_optuna_study,
    read_tune_spec,
)


def read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def importances(study: Any) -> tuple[dict[str, float], str]:
    """Each searched parameter's share of the objective's variation over the completed trials, and
    ``""``; or ``{}`` and why none could be computed (too few completed trials...)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"{len(complete)} completed trial(s): importances need at least 2"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna flags its evaluators as experimental
            return dict(optuna.importance.get_param_importances(study)), ""
    except Exception as exc:  # e.g. every completed trial has the same value
        return {}, f"not computed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def plot_importances(values: dict[str, float], out: Path) -> Path:
    plt = pyplot()
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.4 * len(names) + 1.2))
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (share of the objective's variation)")
    ax.set_xlim(0, max(1e-9, max(values.values())) * 1.1)
    fig.tight_layout()
    return save(fig, out)


def plot_history(study: Any, spec: TuneSpec, out: Path) -> Path:
    """The objective of each trial by trial number, the best so far as a line; pruned trials at the mean
    of the seeds they ran (hollow), failed ones as crosses on the axis."""
    import optuna

    state = optuna.trial.TrialState
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    trials = study.get_trials(deepcopy=False)
    done = [(t.number, t.value) for t in trials if t.state == state.COMPLETE]
    key = OBJECTIVES[spec.objective]
    pruned = []
    for t in trials:
        scores = [s for s in t.user_attrs.get("scores", {}).get(key, []) if s is not None]
        if t.state == state.PRUNED and scores:
            pruned.append((t.number, sum(scores) / len(scores)))
    failed = [t.number for t in trials if t.state == state.FAIL]
    if done:
        ax.plot(*zip(*done), "o", color="tab:blue", label="completed: mean over its seeds")
        best, line = -math.inf, []
        for number, value in sorted(done):
            best = max(best, value)
            line.append((number, best))
        ax.step(*zip(*line), where="post", color="tab:orange", label="best so far")
    if pruned:
        ax.plot(*zip(*pruned), "o", mfc="none", color="tab:gray", label="pruned: mean over the seeds it ran")
    if failed:
        low = ax.get_ylim()[0] if done or pruned else 0.0
        ax.plot(failed, [low] * len(failed), "x", color="tab:red", clip_on=False, label="failed")
    if not trials:
        no_data(ax, "no trial yet")
    ax.set_xlabel("trial")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers
    ax.set_ylabel(f"{spec.objective} (mean over seeds)")
    ax.grid(alpha=0.3)
    if done or pruned or failed:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save(fig, out)


def _g(text: str) -> str:
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def reeval_verdict(rows: list[dict[str, str]]) -> str:
    """Whether the search's order of the top trials holds on the fresh seeds, in one sentence."""
    scored = [r for r in rows if r["fresh_value"]]
    if len(scored) < 2:
        return "Fewer than two trials were re-evaluated: no order to check."
    search = [float(r["search_value"]) for r in scored]
    fresh = [float(r["fresh_value"]) for r in scored]
    same = [r["trial"] for r in scored] == [r["trial"] for r in sorted(scored, key=lambda r: int(r["fresh_rank"]))]
    if len(set(fresh)) == 1:
        return (f"On the fresh seeds the top {len(scored)} trials score the same ({fresh[0]:.4g}): the search's "
                "order is not confirmed, nor contradicted; at this budget they are equivalent.")
    rho, p = rank_correlation(search, fresh) if len(scored) >= 3 else (math.nan, math.nan)
    rho_text = (f" (Spearman rho {rho:.2f} between search and fresh scores, p {format_p(p)} with {len(scored)} trials"
                + ("" if p < ALPHA else ": this agreement is not established") + ")") if math.isfinite(rho) else \
        f" ({len(scored)} trials: too few for a rank correlation)"
    best_drop = search[0] - fresh[0]
    drop = (f" The search's best scored {search[0]:.4g} on its search seeds and {fresh[0]:.4g} on fresh ones"
            + (f": {best_drop:.4g} less, as expected of a pick made on its own seeds (the winner's curse)."
               if best_drop > 0 else ": no less."))
    if same:
        return (f"The fresh seeds order the top {len(scored)} trials as the search did{rho_text}." + drop)
    fresh_order = [r["trial"] for r in sorted(scored, key=lambda r: int(r["fresh_rank"]))]
    first = (f"the search's best, trial {scored[0]['trial']}, stays first" if fresh_order[0] == scored[0]["trial"]
             else f"the search's best, trial {scored[0]['trial']}, is not first on them")
    return (f"The fresh seeds order the top trials differently: {first}; the fresh seeds order the top {len(scored)} "
            f"trials "
            f"{', '.join(fresh_order)} (search: {', '.join(r['trial'] for r in scored)}){rho_text}." + drop)


def conclusion(rows: list[dict[str, str]], best_written: bool) -> str:
    """The plain-words conclusion of a tuning, from the re-evaluation on fresh seeds (``reeval.csv``'s
    rows): what to use, and whether it is established to beat the other top trials."""
    if not best_written:
        return "No trial completed: there is nothing to use yet."
    if not rows:
        return (f"Use {BEST_PRESET} (the search's best trial). Nothing was re-evaluated on fresh seeds, so how it "
                "scores on seeds the search did not pick it on is not known.")
    best = rows[0]["trial"]
    groups = {f"trial {r['trial']}": [float(v) for v in r["fresh_scores"].split()] for r in rows if r["fresh_value"]}
    text = f"Use {BEST_PRESET} (trial {best}, the search's best)."
    if len(groups) < 2:
        return text + " No other trial was re-evaluated: whether it beats the others is not established."
    pairs = pairwise(groups)
    fresh = min(len(v) for v in groups.values())
    if fresh < MIN_SEEDS:
        need = pairs[0].seeds_needed
        return (text + f" Whether it beats the other {len(groups) - 1} re-evaluated trial(s) is not established: "
                f"each ran on {fresh} fresh seed(s), fewer than the {MIN_SEEDS} a verdict needs"
                + (f"; {need} fresh seeds per trial (--reeval-seeds) would detect a difference of "
                   f"{pairs[0].min_effect:g} standard deviation(s) with {pairs[0].power:.0%} power." if need else "."))
    iqms = {label: float(sum(v) / len(v)) for label, v in groups.items()}
    return text + " On the fresh seeds: " + conclusions.among_methods(pairs, iqms, score="fresh score", what="trial")


def build_report(study_dir: Path, spec: TuneSpec, study: Any) -> list[Block]:
    import optuna

    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in (state.COMPLETE, state.PRUNED, state.FAIL, state.RUNNING)}
    files = study_dir / FILES_DIR
    blocks: list[Block] = [Heading(f"Tuning {spec.name}", 1), Paragraph(
        f"{spec.algo} on {spec.env_id}: {len(trials)} trials ({count[state.COMPLETE]} completed, "
        f"{count[state.PRUNED]} pruned, {count[state.FAIL]} failed"
        f"{f', {count[state.RUNNING]} running' if count[state.RUNNING] else ''}). Each trial trains its values on "
        f"seeds {', '.join(map(str, spec.seeds))} for {spec.total_steps} steps, with a deterministic evaluation "
        f"every {spec.eval_every} steps on {spec.eval_episodes} episodes; its score is the mean over its seeds of "
        f"the {'final evaluation' if spec.objective == 'final' else 'area under the evaluation curve'}. Optuna's "
        f"TPE sampler (seed {spec.sampler_seed}) picks the values; "
        + (f"the median pruner stops a trial after a seed (but the last) whose score is below the median of the "
           f"completed trials' scores on that seed (from {PRUNER_STARTUP} completed trials on)."
           if spec.pruner == "median" else "no pruning."))]
    blocks += [Heading("Conclusion", 2),
               Paragraph(conclusion(read_rows(study_dir / REEVAL_FILE), (study_dir / BEST_PRESET).is_file()))]
    space_items = [f"{name}: {json.dumps(value)}" for name, value in spec.space.items()]
    blocks += [Heading("Search space", 2), Bullets(space_items)]
    if spec.fixed:
        blocks.append(Paragraph("Fixed for every trial: " + ", ".join(f"{k}={v}" for k, v in spec.fixed.items())
                                + "."))

    reeval = read_rows(study_dir / REEVAL_FILE)
    preset = study_dir / BEST_PRESET
    blocks.append(Heading("Best config", 2))
    if preset.is_file():
        import yaml

        values = yaml.safe_load(preset.read_text()) or {}
        from policygrad.algos import algorithm

        defaults: dict[str, Any] = {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
                                    else f.default for f in user_fields(algorithm(spec.algo).Config)}
        comment = [line[2:] for line in preset.read_text().splitlines() if line.startswith("# ")]
        blocks.append(Paragraph(f"{BEST_PRESET}: " + " ".join(comment)))
        searched = {name for name in spec.space if isinstance(spec.space[name], dict)}
        blocks.append(Table(["field", "value", "default", "searched"],
                            [[k, str(v), str(list(defaults[k]) if isinstance(defaults.get(k), tuple)
                                             else defaults.get(k, "")), "yes" if k in searched else ""]
                             for k, v in values.items()]))
    else:
        blocks.append(Paragraph("No trial completed: no best config."))

    blocks.append(Heading("Re-evaluation on fresh seeds", 2))
    if reeval:
        blocks.append(Paragraph(f"The top {len(reeval)} trials by search score, trained again on seeds "
                                f"{reeval[0]['fresh_seeds']}, which the search never used. " + reeval_verdict(reeval)))
        blocks.append(Table(["search rank", "trial", f"search score (seeds {reeval[0]['search_seeds']})",
                             "fresh score (mean)", "fresh rank", "fresh seeds' scores", "mean over all seeds"],
                            [[r["search_rank"], r["trial"], _g(r["search_value"]), _g(r["fresh_value"]),
                              r["fresh_rank"], r["fresh_scores"], _g(r["all_seeds_value"])] for r in reeval]))
    else:
        blocks.append(Paragraph("No re-evaluation (no completed trial, or no fresh seeds asked for)."))

    blocks.append(Heading("Hyperparameter importance", 2))
    values_imp, why = importances(study)
    if values_imp:
        blocks.append(Paragraph("Optuna's default importance evaluator (PED-ANOVA) over the completed trials: how "
                                "much of the objective's variation among the good trials each parameter explains. "
                                "With few trials this is a hint, not a measurement."))
        blocks.append(Table(["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in values_imp.items()]))
        blocks.append(Figure(plot_importances(values_imp, files / "importance.svg"), "Importance of each searched "
                             "parameter (PED-ANOVA, normalised to sum to 1)."))
    else:
        blocks.append(Paragraph(f"Importances: {why}."))

    blocks.append(Heading("Optimisation history", 2))
    blocks.append(Figure(plot_history(study, spec, files / "history.svg"), f"Each trial's {spec.objective} (mean over "
                         "its seeds) by trial number, and the best so far."))

    rows = read_rows(study_dir / TRIALS_FILE)
    blocks.append(Heading("Trials", 2))
    if rows:
        header = list(rows[0])
        plain = {"trial", "state", "seed_scores", "error"}  # the others are numbers: 4 significant digits
        blocks.append(Table(header, [[r[h] if h in plain else _g(r[h]) for h in header] for r in rows]))
    return blocks


def write_report(study_dir: str | Path) -> Path:
    """(Re)write ``report.md``, ``report.html`` and ``report_files/*.svg`` of the tuning in ``study_dir``;
    returns the path of report.html."""
    study_dir = Path(study_dir)
    spec = read_tune_spec(study_dir)
    study = read_optuna_study(spec, open_storage(study_dir, spec.storage))
    blocks = build_report(study_dir, spec, study)
    write_text_atomic(study_dir / REPORT_MD, to_markdown(blocks, study_dir))
    out = study_dir / REPORT_HTML
    write_text_atomic(out, to_html(blocks, f"Tuning {spec.name}"))
    return out
