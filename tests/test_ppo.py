"""PPO's clipped loss, its gradient sign and its diagnostics, against cases worked out by hand."""

import math

import pytest
import torch

from policygrad.core import losses


def grad_of_clip_loss(ratio: float, advantage: float, clip: float = 0.2) -> tuple[float, float]:
    """(loss, d loss / d log pi) for one sample with pi / pi_old = ratio."""
    log_prob = torch.tensor([math.log(ratio)], requires_grad=True)
    loss = losses.ppo_clip_loss(log_prob, torch.zeros(1), torch.tensor([advantage]), clip)
    loss.backward()
    return loss.item(), log_prob.grad.item()


@pytest.mark.parametrize("ratio,advantage,expected_loss,gradient", [
    # inside the clip range: loss = -r A, d/dlogpi = -r A
    (1.1, 2.0, -2.2, -2.2),
    (0.9, -1.0, 0.9, 0.9),
    # A > 0 and r above 1 + eps: clipped at 1.2 -> loss -1.2 * 2 = -2.4 and no gradient (no incentive to go higher)
    (1.5, 2.0, -2.4, 0.0),
    # A < 0 and r below 1 - eps: clipped at 0.8 -> loss 0.8 and no gradient
    (0.5, -1.0, 0.8, 0.0),
    # A > 0 and r below 1 - eps: min picks the unclipped r A = 1.0 -> gradient still pushes r up
    (0.5, 2.0, -1.0, -1.0),
    # A < 0 and r above 1 + eps: min picks r A = -1.5 -> loss 1.5, gradient pushes r down
    (1.5, -1.0, 1.5, 1.5),
])
def test_clipped_surrogate_and_gradient_sign(ratio, advantage, expected_loss, gradient):
    loss, grad = grad_of_clip_loss(ratio, advantage)
    assert loss == pytest.approx(expected_loss, abs=1e-5)
    assert grad == pytest.approx(gradient, abs=1e-5)


def test_clip_fraction_and_approx_kl_on_known_ratios():
    ratios = torch.tensor([1.0, 1.1, 1.3, 0.7, 0.81])
    log_probs, old = ratios.log(), torch.zeros(5)
    assert losses.clip_fraction(log_probs, old, 0.2) == pytest.approx(2 / 5)  # 1.3 and 0.7 are outside
    # k3 estimator: mean of (r - 1) - log r
    expected = float(((ratios - 1) - ratios.log()).mean())
    assert losses.approx_kl(log_probs, old) == pytest.approx(expected, rel=1e-6)
    assert losses.approx_kl(old, old) == 0.0


def test_weights_exclude_padding_rows():
    log_probs, old = torch.tensor([0.0, 5.0]), torch.zeros(2)
    adv = torch.tensor([1.0, 100.0])
    weights = torch.tensor([1.0, 0.0])
    assert losses.ppo_clip_loss(log_probs, old, adv, 0.2, weights).item() == pytest.approx(-1.0)


def test_clipped_value_loss_takes_the_larger_error():
    values, old, targets = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    # unclipped error (2 - 3)^2 = 1; clipped value 0 + clamp(2, -0.5, 0.5) = 0.5 -> (0.5 - 3)^2 = 6.25
    assert losses.value_loss(values, targets, old_values=old, clip_coef=0.5).item() == pytest.approx(0.5 * 6.25)
    assert losses.value_loss(values, targets).item() == pytest.approx(0.5)


def test_explained_variance_known_cases():
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert losses.explained_variance(targets, targets) == pytest.approx(1.0)
    assert losses.explained_variance(torch.full((4,), 2.5), targets) == pytest.approx(0.0)
    assert math.isnan(losses.explained_variance(targets, torch.ones(4)))


# -- target_kl: the early stop of an update's epochs ------------------------------------------------------

def test_target_kl_stops_before_the_step_of_the_first_minibatch_past_1x_the_target(monkeypatch):
    """On fixed data, with the minibatches' approx KL measured in a run that never stops: a target just
    below the second minibatch's KL (its first above 0) stops the update there, before that step, at
    1x the target (CleanRL's threshold; SB3's 1.5x would not stop here), with one step taken in one
    epoch. Removing the stop, moving it after the step or to the end of the epoch fails this test."""
    import policygrad as pg
    from policygrad.algos import ppo
    from policygrad.algos.on_policy import FlatBatch, estimate_advantages
    from policygrad.core.envs import make_vec_env
    from policygrad.core.networks import build_agent

    def run(target_kl: float) -> tuple[list[float], int, dict[str, float]]:
        """The approx KL of each minibatch loss computed, the gradient steps taken, and the metrics."""
        cfg = pg.make_config("ppo", env_id="CartPole-v1", preset="none", num_envs=2, num_steps=32, num_minibatches=4,
                             update_epochs=3, learning_rate=0.01, target_kl=target_kl, progress=False)
        torch.manual_seed(0)
        envs = make_vec_env("CartPole-v1", cfg.num_envs)
        network = build_agent(cfg, envs.single_observation_space, envs.single_action_space, True)
        learner = ppo.PPO(cfg, envs, network)
        batch = learner.loop.collector.collect()
        estimate = estimate_advantages(batch, network, cfg)
        data = FlatBatch.from_batch(batch, estimate.advantages, estimate.targets)
        envs.close()
        kls, steps = [], []
        loss_of, step_of = ppo.ppo_minibatch_loss, ppo.gradient_step

        def measured_loss(cfg, network, mb, *args):
            loss, terms = loss_of(cfg, network, mb, *args)
            kls.append(losses.approx_kl(terms["log_probs"], mb.log_probs))
            return loss, terms

        monkeypatch.setattr(ppo, "ppo_minibatch_loss", measured_loss)
        monkeypatch.setattr(ppo, "gradient_step", lambda *args: steps.append(1) or step_of(*args))
        torch.manual_seed(1)  # the same minibatch shuffles in every run
        metrics = learner.update(data).metrics
        monkeypatch.undo()
        return kls, len(steps), metrics

    kls, steps, metrics = run(target_kl=0.0)  # never stops: every minibatch's KL before its step
    assert steps == 12 and metrics["diag/epochs"] == 3
    assert kls[0] < 1e-9 < kls[1]  # the first minibatch meets the collecting policy itself
    target = kls[1] / 1.25  # exceeded 1.25x: stopped at 1x, not at SB3's 1.5x
    assert kls[0] < target
    kls_stopped, steps, metrics = run(target_kl=target)
    assert kls_stopped == kls[:2]  # the same two minibatches, then the stop
    assert steps == 1 and metrics["diag/epochs"] == 1
    assert metrics["diag/approx_kl"] > 0  # the stopped minibatch's KL is in the update's diagnostics
