"""Non-finite numbers: a NaN/inf loss or gradient skips the step and keeps the parameters, several in a
row stop the run naming the update and the term; an environment's NaN is reported with the copy and the
step; degenerate batches (one sample, all-equal advantages) give finite losses."""

import csv
import math

import pytest
import torch

import policygrad as pg
from policygrad.algos import algorithm
from policygrad.algos.base import gradient_step
from policygrad.core import losses
from policygrad.core.envs import env_spaces, make_vec_env
from policygrad.core.errors import NonFiniteError
from policygrad.core.networks import build_agent
from policygrad.run.trainer import check_update

FAST = dict(progress=False, tensorboard=False, device="cpu", eval_episodes=1)


def parameter_and_optimizer():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    return p, torch.optim.Adam([p], lr=0.1)


@pytest.mark.parametrize("make_loss", [
    lambda p: (p * torch.tensor([math.nan, 1.0])).sum(),   # NaN loss
    lambda p: (p * torch.tensor([math.inf, 1.0])).sum(),   # infinite loss
    lambda p: torch.sqrt(p - p.detach()).sum(),            # finite loss (0), infinite gradient
])
def test_non_finite_step_is_skipped_and_changes_nothing(make_loss):
    p, opt = parameter_and_optimizer()
    step = gradient_step(opt, make_loss(p), [p], max_grad_norm=0.5)
    assert not math.isfinite(step.norm) or not math.isfinite(make_loss(p).item())
    assert not step.finite  # the caller counts it as skipped
    assert torch.equal(p.detach(), torch.tensor([1.0, 2.0]))  # the last finite parameters
    assert opt.state_dict()["state"] == {}  # the optimizer was never stepped
    assert p.grad is None
    # the next finite step goes through as usual
    assert gradient_step(opt, (p ** 2).sum(), [p], max_grad_norm=0.5).finite
    assert not torch.equal(p.detach(), torch.tensor([1.0, 2.0]))


def test_check_update_counts_updates_in_a_row_and_resets():
    cfg = pg.A2CConfig(max_nonfinite_updates=3, device="cpu")
    net = build_agent(cfg, *env_spaces(cfg.env_id), with_value=True)
    bad = {"losses/policy": 0.1, "losses/value": math.inf}
    assert check_update(cfg, net, bad, skipped=1, streak=0, update=7, global_step=280) == 1
    assert check_update(cfg, net, bad, skipped=1, streak=1, update=8, global_step=320) == 2
    assert check_update(cfg, net, {"losses/value": 0.5}, skipped=0, streak=2, update=9, global_step=360) == 0
    with pytest.raises(NonFiniteError, match=r"update 12 \(step 480\): losses/value \(inf\) went non-finite in 3 "
                                             r"updates in a row"):
        check_update(cfg, net, bad, skipped=1, streak=2, update=12, global_step=480)


# The huge rewards overflow the discounted returns on purpose: NumPy's warning is the input, not a finding.
@pytest.mark.filterwarnings("ignore:overflow encountered in add:RuntimeWarning")
def test_run_with_overflowing_losses_stops_after_three_updates_with_initial_parameters(tmp_path):
    cfg = pg.A2CConfig(env_id="faulty_envs:HugeReward", total_steps=10_000, num_envs=2, num_steps=5, **FAST)
    torch.set_num_threads(cfg.torch_threads)  # as train() does: the initial weights (QR depends on threads)
    torch.manual_seed(cfg.seed)
    initial = build_agent(cfg, *env_spaces(cfg.env_id), with_value=True).state_dict()
    with pytest.raises(NonFiniteError, match=r"update 3 \(step 30\): losses/(policy|value) \((nan|inf)\) went "
                                             r"non-finite in 3 updates in a row \(max_nonfinite_updates=3\)"):
        pg.train(cfg, run_dir=tmp_path / "run")
    agent = pg.load(tmp_path / "run")  # the final checkpoint: the last finite (here: initial) parameters
    for key, value in agent.network.state_dict().items():
        assert torch.equal(value, initial[key]), key
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        assert [row["diag/skipped_steps"] for row in csv.DictReader(f)] == ["1.0"] * 3


def test_a3c_workers_never_write_non_finite_steps_and_stop_after_three(tmp_path):
    # Hogwild workers step the shared network themselves: one NaN step would reach every worker.
    from policygrad.algos.a3c import WorkerFailed

    cfg = pg.A3CConfig(env_id="faulty_envs:HugeReward", total_steps=10_000, num_workers=1, num_envs=2,
                       num_steps=5, **FAST)
    torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(cfg.seed)
    initial = build_agent(cfg, *env_spaces(cfg.env_id), with_value=True).state_dict()
    with pytest.raises(WorkerFailed, match=r"(?s)NonFiniteError: A3C worker 0 at step 30: losses/\w+ \((nan|inf)\) "
                                           r"went non-finite in 3 updates in a row"):
        pg.train(cfg, run_dir=tmp_path / "run")
    agent = pg.load(tmp_path / "run")
    for key, value in agent.network.state_dict().items():
        assert torch.equal(value, initial[key]), key


@pytest.mark.parametrize("env_id,needle", [
    ("faulty_envs:NaNObservation", r"environment 0 of 2 returned a non-finite observation \(nan at index 2\) at "
                                   r"vector step 4 \(step 4 of its episode\)"),
    ("faulty_envs:InfReward", r"environment 0 of 2 returned a non-finite reward \(inf\) at vector step 3 "
                              r"\(step 3 of its episode\)"),
])
def test_environment_nan_is_reported_with_copy_and_step(env_id, needle):
    envs = make_vec_env(env_id, 2)
    envs.reset(seed=0)
    with pytest.raises(NonFiniteError, match=needle):
        for _ in range(10):
            envs.step(envs.env.action_space.sample())


def test_training_on_a_nan_env_stops_with_the_report(tmp_path):
    cfg = pg.PPOConfig(env_id="faulty_envs:NaNObservation", total_steps=2000, num_envs=2, num_steps=16, **FAST)
    with pytest.raises(NonFiniteError, match="non-finite observation"):
        pg.train(cfg, run_dir=tmp_path / "run", check_env=False)  # the check would have refused it first


def test_normalizing_all_equal_advantages_or_one_sample_is_finite():
    for x, w in ((torch.full((6,), 3.0), None), (torch.tensor([2.5]), None),
                 (torch.tensor([1.0, 5.0, 1.0]), torch.tensor([1.0, 0.0, 1.0]))):
        out = losses.normalize(x, w)
        real = out if w is None else out[w.bool()]  # padding rows are never used
        assert torch.isfinite(out).all() and torch.equal(real, torch.zeros_like(real))
    assert losses.masked_mean(torch.tensor([1.0]), torch.tensor([0.0])).item() == 0.0  # no real sample


@pytest.mark.parametrize("algo,changes", [
    ("ppo", dict(num_envs=2, num_steps=4, num_minibatches=8, update_epochs=2, norm_adv=True)),  # minibatches of one
    ("a2c", dict(num_envs=1, num_steps=1, norm_adv=True)),  # a batch of one
    ("actor_critic", dict(num_envs=1, norm_adv=True)),
    ("reinforce", dict(num_envs=1, episodes_per_update=1, reward_norm="standardize")),
])
def test_degenerate_batches_give_finite_updates(algo, changes):
    # CountingEnv: every reward is 1 and every episode alike, so advantages are often all equal
    cfg = pg.make_config(algo, env_id="probe_envs:CountingEnv", total_steps=1000, **FAST, **changes)
    envs = make_vec_env(cfg.env_id, cfg.num_envs)
    torch.manual_seed(0)
    net = build_agent(cfg, *env_spaces(cfg.env_id), with_value=algorithm(algo).needs_value(cfg))
    runner = algorithm(algo)(cfg, envs, net)
    for _ in range(3):
        iteration = runner.iterate()
        metrics = iteration.metrics
        assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("losses/")), metrics
        assert iteration.skipped_steps == 0
    assert all(torch.isfinite(p).all() for p in net.parameters())
