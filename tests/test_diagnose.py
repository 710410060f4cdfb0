"""policygrad diagnose gradients (issue 17) and the gradient noise scale logged in training.

On a two-step chain whose policy gradient is computed exactly, the unbiased estimators' means converge
to it and their variances order as the theory says; a baseline that depends on the action is caught
as biased; the noise scale PPO and A2C log matches a direct computation on fixed data; bad input is
a one-line error with exit code 2; the report renders in a browser; the guide quotes its committed
output."""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import shlex
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import policygrad as pg
from policygrad.algos.grad_noise import noise_generator, noise_scale_terms
from policygrad.algos.on_policy import FlatBatch, estimate_advantages
from policygrad.algos.ppo import PPO, ppo_minibatch_loss
from policygrad.cli import main
from policygrad.core import losses
from policygrad.core.envs import make_vec_env
from policygrad.core.networks import ActorCritic, build_agent
from policygrad.diagnostics.diagnose import diagnose_gradients
from policygrad.diagnostics.estimators import Estimator
from policygrad.diagnostics.statistics import sign_flip_p

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide.md"
STUDIES = ROOT / "docs" / "studies"
GAMMA = 0.9


class TwoStepChain(gym.Env):
    """Two steps, then the episode terminates. State 0: action a0 pays R0[a0] and leads to state
    1 + a0; there, action a1 pays R1[state][a1]. Large rewards of similar size: a baseline matters."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)
    R0 = (4.0, 5.0)
    R1 = {1: (4.0, 6.0), 2: (7.0, 4.0)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = 0
        return 0, {}

    def step(self, action):
        a = int(action)
        if self.state == 0:
            self.state = 1 + a
            return self.state, self.R0[a], False, False, {}
        return self.state, self.R1[self.state][a], True, False, {}


def chain_network(seed: int = 3) -> ActorCritic:
    torch.manual_seed(seed)
    net = ActorCritic(TwoStepChain.observation_space, TwoStepChain.action_space, hidden_sizes=(8,), with_value=False)
    with torch.no_grad():  # a policy away from uniform, so that the gradient is not tiny
        net.policy_head.last_layer.weight.mul_(40.0)
    return net


def exact_gradient(net: ActorCritic, gamma: float) -> torch.Tensor:
    """grad J, J = sum_a0 pi(a0|0) (R0[a0] + gamma sum_a1 pi(a1|1+a0) R1[1+a0][a1]), by enumeration."""
    probs = net.dist(torch.tensor([0, 1, 2])).probs
    J = sum(probs[0, a0] * (TwoStepChain.R0[a0] + gamma * sum(probs[1 + a0, a1] * TwoStepChain.R1[1 + a0][a1]
                                                                for a1 in (0, 1)))
            for a0 in (0, 1))
    params = [p for n, p in net.named_parameters() if n.startswith("policy")]
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(J, params)])


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a.double() @ b.double() / (a.double().norm() * b.double().norm()))


ACTION_BASELINE = Estimator("action_baseline", lambda s: s.discount * (s.rtg - 3.0 * s.actions.float()))


@pytest.fixture(scope="module")
def chain():
    net = chain_network()
    estimators = ["total", "reward_to_go", "mean_baseline", "value_baseline", "td", ACTION_BASELINE]
    diagnosis = diagnose_gradients("test_diagnose:TwoStepChain", network=net, estimators=estimators, batches=64,
                                   batch_episodes=32, gamma=GAMMA, seed=1)
    return net, diagnosis


def test_unbiased_estimators_converge_to_the_exact_gradient(chain):
    net, d = chain
    true = exact_gradient(net, GAMMA)
    assert d.parameter_names == [n for n, _ in net.named_parameters() if n.startswith("policy")]
    for name in ("total", "reward_to_go", "mean_baseline", "value_baseline"):
        assert cos(d.mean_gradients[name], true) > 0.99, (name, cos(d.mean_gradients[name], true))
        assert d.by_name(name).bias_p > 0.01, name
    # the lower the variance, the closer the mean of the same episodes
    assert cos(d.mean_gradients["value_baseline"], true) > 0.999
    # one batch of 32 episodes: the value baseline points the right way, the total return hardly does
    assert d.by_name("value_baseline").cosine > 0.9 > d.by_name("total").cosine


def test_variances_order_as_the_theory_says(chain):
    _, d = chain
    trace = {s.name: s.trace_cov for s in d.stats}
    assert trace["total"] > 1.3 * trace["reward_to_go"]  # rewards before t only add noise
    assert trace["reward_to_go"] > 4 * trace["mean_baseline"]  # the returns are large and alike: centre them
    assert trace["mean_baseline"] > trace["value_baseline"]  # a baseline of the state does better still
    assert d.reference.name == "value_baseline"
    needed = {s.name: s.episodes_to_cosine for s in d.stats}
    assert needed["total"] > needed["reward_to_go"] > needed["mean_baseline"] > needed["value_baseline"]
    # the noise scale in episodes is the batch's noise-to-signal times its episodes
    s = d.by_name("reward_to_go")
    assert s.noise_scale == pytest.approx(32 * s.noise_to_signal)


def test_a_baseline_that_depends_on_the_action_is_caught_as_biased(chain):
    net, d = chain
    s = d.by_name("action_baseline")
    assert not s.unbiased and s.bias_p < 0.001 and s.bias_p_holm < 0.01 and s.relative_bias > 0.3
    assert cos(d.mean_gradients["action_baseline"], exact_gradient(net, GAMMA)) < 0.95
    # the measured curve follows the model for an unbiased estimator (batches of 1 .. 512 episodes)
    ref = d.reference
    for m, measured in ref.curve:
        assert measured == pytest.approx(ref.model_cosine(m), abs=0.12), (m, measured)


def test_sign_flip_test_on_known_differences():
    rng = np.random.default_rng(0)
    centred = torch.from_numpy(rng.normal(size=(40, 50)))
    assert sign_flip_p(centred) > 0.05
    assert sign_flip_p(centred + 0.8) < 0.001
    assert sign_flip_p(torch.zeros(10, 3)) == 1.0


# ------------------------------------------------------------------------------- the gradient noise scale

def test_noise_scale_terms_of_all_halves_are_the_per_sample_statistics():
    """On fixed data: averaged over every half of an 8-row minibatch, the two-batch-size estimates are
    exactly the sample covariance trace of the per-row gradients and |mean|^2 - tr/8 (McCandlish et al.,
    appendix A), with the half gradients computed as PPO computes them."""
    torch.manual_seed(0)
    cfg = pg.make_config("ppo", env_id="CartPole-v1", num_envs=2, num_steps=4, num_minibatches=1,
                         grad_noise_scale=True, progress=False)
    envs = make_vec_env("CartPole-v1", 2)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space, True)
    algo = PPO(cfg, envs, agent)
    batch = algo.loop.collector.collect()
    est = estimate_advantages(batch, agent, cfg)
    mb = FlatBatch.from_batch(batch, est.advantages, est.targets)
    envs.close()
    rows = len(mb)
    assert rows == 8
    adv = losses.normalize(mb.advantages)
    actor = algo.hook.actor_parameters(mb.obs)
    assert {id(p) for p in actor} == {id(p) for n, p in agent.named_parameters() if n.startswith("policy")}
    per_row = []
    for i in range(rows):
        loss, _ = ppo_minibatch_loss(cfg, agent, mb.rows(slice(i, i + 1)), adv[i:i + 1])
        per_row.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, actor)]).double())
    x = torch.stack(per_row)
    full = float(x.mean(0).pow(2).sum())
    trace_direct = float((x - x.mean(0)).pow(2).sum() / (rows - 1))
    terms = []
    for half in itertools.combinations(range(rows), rows // 2):
        index = torch.tensor(half)
        loss, _ = ppo_minibatch_loss(cfg, agent, mb.rows(index), adv[index])
        terms.append(noise_scale_terms(algo.hook.actor_sq_norm(loss), full, rows // 2, rows))
    trace, sq_norm = np.mean(terms, axis=0)
    assert trace == pytest.approx(trace_direct, rel=1e-4)
    assert sq_norm == pytest.approx(full - trace_direct / rows, rel=1e-4)


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_logged_noise_scale_is_the_direct_computation_and_training_is_unchanged(algo, tmp_path):
    """One update on fixed data: diag/grad_noise_scale is tr/|G|^2 from the half and whole gradients
    computed directly (clipped steps included: the clip is active here); and training with the
    diagnostic on gives the same parameters, bit for bit."""
    fields = dict(num_envs=4, num_steps=16, max_grad_norm=0.05, grad_noise_scale=True, progress=False)
    if algo == "ppo":
        fields.update(num_minibatches=1, update_epochs=1)
    cfg = pg.make_config(algo, env_id="CartPole-v1", **fields)
    torch.manual_seed(0)
    envs = make_vec_env("CartPole-v1", cfg.num_envs)
    agent = build_agent(cfg, envs.single_observation_space, envs.single_action_space, True)
    learner = pg.ALGORITHMS[algo](cfg, envs, agent)
    batch = learner.loop.collector.collect()
    est = estimate_advantages(batch, agent, cfg)
    data = FlatBatch.from_batch(batch, est.advantages, est.targets)
    envs.close()
    before = {n: p.detach().clone() for n, p in agent.named_parameters()}
    index = torch.from_numpy(noise_generator(cfg.seed).permutation(len(data))[: len(data) // 2])
    metrics = learner.update(data).metrics
    with torch.no_grad():
        for n, p in agent.named_parameters():
            p.copy_(before[n])
    actor = [p for n, p in agent.named_parameters() if n.startswith("policy")]
    adv = losses.normalize(data.advantages) if cfg.norm_adv else data.advantages

    def sq_norm(rows: FlatBatch, advantages: torch.Tensor) -> float:
        log_probs = agent.dist(rows.obs).log_prob(rows.actions)
        loss = -(log_probs * advantages).mean()  # the ratio is 1 before the step: PPO's gradient is this one
        return float(sum(g.pow(2).sum() for g in torch.autograd.grad(loss, actor)))

    trace, g2 = noise_scale_terms(sq_norm(data.rows(index), adv[index]), sq_norm(data, adv), len(index), len(data))
    if g2 > 0:
        assert metrics["diag/grad_noise_scale"] == pytest.approx(trace / g2, rel=1e-3)
    else:  # the noise swamps the mean on this batch: no estimate of |G|^2 yet, so no noise scale
        assert math.isnan(metrics["diag/grad_noise_scale"])
    assert metrics["diag/grad_norm"] > cfg.max_grad_norm  # the step was clipped

    params = {}
    for on in (False, True):
        config = pg.make_config(algo, env_id="CartPole-v1", total_steps=256, num_envs=4, num_steps=16,
                                grad_noise_scale=on, progress=False, tensorboard=False, eval_episodes=1)
        result = pg.train(config, run_dir=tmp_path / f"{algo}_{on}")
        params[on] = torch.cat([p.detach().reshape(-1) for p in result.agent.network.parameters()])
        header = (result.run_dir / "metrics.csv").read_text().splitlines()[0]
        assert ("diag/grad_noise_scale" in header) == on
    assert torch.equal(params[False], params[True])


def test_noise_scale_state_travels_with_checkpoints():
    """What the moving averages and the half-batch generator have reached is part of the algorithm's
    state (a resumed run logs what an uninterrupted one would); a checkpoint made without the
    diagnostic leaves it fresh, and none is added when it is off."""
    cfg = pg.make_config("ppo", env_id="CartPole-v1", num_envs=2, num_steps=8, grad_noise_scale=True)
    envs = make_vec_env("CartPole-v1", 2)

    def ppo(config):  # a network each: a flat optimizer owns its parameters
        return PPO(config, envs, build_agent(config, envs.single_observation_space, envs.single_action_space, True))

    first, second = ppo(cfg), ppo(cfg)
    first.hook.trace, first.hook.sq_norm = 3.0, 0.5
    first.hook.rng.random(5)
    data, tensors = first.state()
    second.load_state(data, tensors, exact=True, fresh_seed=0)
    assert (second.hook.trace, second.hook.sq_norm) == (3.0, 0.5) and second.hook.update() == 6.0
    assert second.hook.rng.bit_generator.state == first.hook.rng.bit_generator.state
    plain = ppo(cfg.replace(grad_noise_scale=False))
    assert not any(key.startswith("noise_scale") for key in plain.state()[0])
    second.load_state(plain.state()[0], tensors, exact=True, fresh_seed=0)  # an older checkpoint: kept as is
    assert second.hook.trace == 3.0
    with pytest.raises(ValueError, match="noise_scale_trace"):
        second.load_state({**data, "noise_scale_trace": "x"}, tensors, exact=True, fresh_seed=0)
    envs.close()


def test_the_fields_help_states_the_measured_cost():
    for config in (pg.PPOConfig, pg.A2CConfig):
        text = config.__dataclass_fields__["grad_noise_scale"].metadata["help"]
        assert re.search(r"\d+(\.\d+)?% ", text) and "COST" not in text, text


# ----------------------------------------------------------------------------------- the command line

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A REINFORCE run with a value baseline (its critic serves the value estimators)."""
    config = pg.make_config("reinforce", env_id="CartPole-v1", total_steps=1500, checkpoint_every=300,
                            keep_checkpoints=5, progress=False, tensorboard=False, eval_episodes=1)
    return pg.train(config, run_dir=tmp_path_factory.mktemp("runs") / "reinforce").run_dir


@pytest.mark.parametrize("args,message", [
    ("--env CartPole-v1 --estimators total,bogus", "unknown estimator 'bogus'"),
    ("--env CartPole-v1 --estimators gae:2", "gae:LAMBDA with LAMBDA in [0, 1]"),
    ("--env CartPole-v1 --estimators td,gae:0.9", "include no unbiased one"),
    ("--env CartPole-v1 --batches 3", "batches=3 is too few"),
    ("--env CartPole-v1 --batch-episodes 1", "batch_episodes=1 is too few"),
    ("--env NoSuchEnv-v0", "not a registered Gymnasium environment"),
    ("", "give an environment"),
    ("--env Pendulum-v1 --run RUN", "trained on CartPole-v1, not on Pendulum-v1"),
    ("--run RUN --checkpoint latest", "not a checkpoint name"),
    ("--run RUN --critic fitted", "critic='fitted' is invalid"),
])
def test_bad_input_is_a_one_line_error_with_exit_2(args, message, tiny_run, capsys):
    argv = ["diagnose", "gradients", *shlex.split(args.replace("RUN", str(tiny_run)))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_runs_checkpoint_diagnosed_from_the_command_line(tiny_run, tmp_path, capsys):
    from test_study_report import assert_readable, render_in_chromium

    out = tmp_path / "diag"
    argv = ["diagnose", "gradients", "--run", str(tiny_run), "--batches", "4", "--batch-episodes", "3",
            "--estimators", "total,reward_to_go,value_baseline,gae:0.95,nstep:3", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "\nvalue_baseline " in printed and "the run's own critic" in printed
    assert "\\|" not in printed and "|---" not in printed  # a table for the terminal, not Markdown
    rows = list(csv.DictReader(open(out / "gradients.csv")))
    assert [r["estimator"] for r in rows] == ["total", "reward_to_go", "value_baseline", "gae:0.95", "nstep:3"]
    assert all(math.isfinite(float(r["trace_cov"])) for r in rows)
    settings = json.loads((out / "diagnosis.json").read_text())
    assert settings["env_id"] == "CartPole-v1" and settings["batches"] == 4 and settings["global_step"] >= 1500
    assert settings["command"] == "policygrad " + shlex.join(argv)
    rendered = render_in_chromium(out / "report.html", tmp_path)
    boxes, tables, errors, requests, screenshot = rendered[:5]
    assert len(boxes) == 2 and tables == 1 and errors == []
    estimators = ["total", "reward_to_go", "value_baseline", "gae:0.95", "nstep:3"]
    assert_readable(rendered, [estimators, estimators])
    for box in boxes:
        assert box["width"] > 100 and box["height"] > 100 and box["shapes"] > 10, box
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests
    assert screenshot.stat().st_size > 10_000


def test_several_checkpoints_give_a_report_each_and_a_summary_over_training(tiny_run, tmp_path, capsys):
    from test_study_report import assert_readable, render_in_chromium

    names = sorted(p.name for p in (tiny_run / "checkpoints").glob("step_*"))[:2]
    assert len(names) == 2
    out = tmp_path / "over"
    argv = ["diagnose", "gradients", "--run", str(tiny_run), "--checkpoint", ",".join(names), "--batches", "4",
            "--batch-episodes", "2", "--estimators", "reward_to_go,value_baseline,td", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads((out / "training.json").read_text())
    assert summary["checkpoints"] == names and summary["steps"] == sorted(summary["steps"])
    rows = table_rows((out / "report.md").read_text())
    assert rows[0].startswith("| step | mean return | reward_to_go | value_baseline | td |") and len(rows) == 3
    for name in names:  # each checkpoint's own report, diagnosed at that checkpoint
        settings = json.loads((out / name / "diagnosis.json").read_text())
        assert settings["policy"].endswith(name) and (out / name / "report.md").is_file()
    rendered = render_in_chromium(out / "report.html", tmp_path)
    boxes, tables, errors, requests, _ = rendered[:5]
    assert len(boxes) == 1 and tables == 1 and errors == []
    assert_readable(rendered, [["reward_to_go", "value_baseline", "td"]])
    # the conclusion follows the estimator each checkpoint's own conclusion picks (or that none reaches it)
    conclusion = (out / "report.md").read_text().split("## Conclusion")[1].split("## ")[0].strip()
    picked = []
    for name in names:
        own = (out / name / "report.md").read_text().split("## Conclusion")[1].strip()
        match = re.match(r"Use (\S+) at this policy", own)
        assert match or own.startswith("No estimator reaches cosine"), own
        picked.append(match.group(1) if match else None)
    if picked == [None] * len(names):
        assert conclusion.startswith("No estimator reaches cosine 0.9 at a batch size these diagnoses can estimate, "
                                     "at any checkpoint."), conclusion
    elif len(set(picked)) == 1:
        assert conclusion.startswith(f"Use {picked[0]}: at every checkpoint diagnosed"), conclusion
    else:
        assert all(f"step {s}: {p or 'none reaches it'}" in conclusion
                   for s, p in zip(summary["steps"], picked)), conclusion
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests


# ------------------------------------------------------------------------------------------ the guide

# The committed diagnoses the guide quotes: the report's folder, the file holding the command that made it
QUOTED = {"diagnose_CartPole-v1_fresh": "diagnosis.json", "diagnose_CartPole-v1": "training.json",
          "diagnose_CartPole-v1/step_000004096": None, "diagnose_Pendulum-v1_fresh": "diagnosis.json",
          "diagnose_Pendulum-v1": "diagnosis.json"}


def table_rows(report: str) -> list[str]:
    start = report.index("## Estimators") if "## Estimators" in report else report.index("## Over training")
    return [line for line in report[start:].split("\n## ")[0].splitlines() if line.startswith("| ")]


@pytest.mark.parametrize("name,record", sorted(QUOTED.items()))
def test_guide_quotes_the_committed_diagnoses_and_their_commands(name, record):
    from test_guide import section

    answer = section(GUIDE.read_text(), "### Measuring the estimators")
    folder = STUDIES / name
    rows = table_rows((folder / "report.md").read_text())
    assert len(rows) >= 5  # the header and a row per estimator (per checkpoint)
    for row in rows:
        assert row in answer, f"the guide does not quote this row of {name}/report.md: {row}"
    for figure in ("variance.svg", "cosine.svg") if record == "diagnosis.json" else ():
        assert (folder / "report_files" / figure).is_file()
    if record is not None:
        command = json.loads((folder / record).read_text())["command"]
        assert command in answer, f"the guide does not give the command that made {name}"
        assert command.endswith(f"--out docs/studies/{name}")
        if name == "diagnose_CartPole-v1":  # every checkpoint it names has its report committed
            for checkpoint in shlex.split(command)[shlex.split(command).index("--checkpoint") + 1].split(","):
                assert (folder / checkpoint / "report.md").is_file()


def test_the_conclusion_names_the_estimator_to_use_and_what_is_established():
    from policygrad.diagnostics.report import conclusion
    from policygrad.diagnostics.statistics import EstimatorStats

    def est(name, unbiased, episodes, bias_p, reference=False):
        return EstimatorStats(name, unbiased, 1.0, 1.0, 1.0, 1.0, 0.5, 0.1, 1.0, 0.0, bias_p, episodes,
                              reference=reference, bias_p_holm=bias_p)

    stats = [est("total", True, 400.0, 0.9), est("mean_baseline", True, 120.0, 0.5, reference=True),
             est("td", False, 30.0, 0.001), est("gae", False, 60.0, 0.2)]
    text = conclusion(stats, batches=32, target=0.9)
    assert text.startswith("Use gae at this policy: of the estimators whose mean is not detectably off, it needs "
                           "the fewest episodes per batch, 60, for a gradient with cosine 0.9 to the true one; the "
                           "reference, mean_baseline, needs 120.")
    assert "Established: td is biased here (bias p below 0.01 after Holm)" in text  # fewest episodes, but off
    assert "Not established: that gae is unbiased; no bias was detected over 32 batches" in text


def test_diagnosis_figures_one_colour_per_estimator_and_no_cosine_above_one(tmp_path, monkeypatch):
    import matplotlib.colors as mcolors

    from policygrad.diagnostics import plots
    from policygrad.diagnostics.statistics import EstimatorStats

    kept = []

    def keep(fig, out):
        fig.canvas.draw()
        kept.append(fig)
        return Path(out)

    monkeypatch.setattr(plots, "save", keep)
    stats = [EstimatorStats(name, unbiased, 1.0, 1.0 + i, 1.0, 4.0, 0.5, 0.1, 1.0, 0.0, 0.5, 10.0,
                            reference=i == 0, curve=[(1, 0.4), (4, 0.8), (16, 1.01)])
             for i, (name, unbiased) in enumerate((("total", True), ("td", False), ("gae", False)))]
    plots.variance_plot(stats, tmp_path / "v.svg")
    plots.cosine_plot(stats, tmp_path / "c.svg", 0.9)
    variance, cosine = kept
    bars = variance.axes[0].patches
    lines = {line.get_label(): line for line in cosine.axes[0].get_lines()}
    for bar, s in zip(bars, stats):  # the same colour for td in both figures
        name = s.name + (" (reference)" if s.reference else "")
        assert mcolors.to_hex(bar.get_facecolor()) == mcolors.to_hex(lines[name].get_color())
        assert (bar.get_hatch() == plots.CRITIC_HATCH) == (not s.unbiased)
    ax = cosine.axes[0]
    assert ax.get_ylim()[1] == 1.0
    points = [y for line in ax.get_lines() if line.get_marker() == "o" for y in line.get_ydata()]
    assert max(points) == 1.0  # 1.01 measured (the correction overshoots): drawn at 1
