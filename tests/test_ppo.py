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
