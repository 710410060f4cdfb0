"""Returns and advantages against values worked out by hand (gamma = 0.1 gives readable decimals).

Layout of every example: T rows (time), N columns (environments).
"""

import pytest
import torch

from policygrad import returns

G = 0.1


def col(*values):
    """A (T, 1) tensor: one environment."""
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


def flags(*values):
    return torch.tensor(values, dtype=torch.bool).unsqueeze(1)


def close(actual, expected):
    assert torch.allclose(actual, torch.as_tensor(expected, dtype=torch.float32), atol=1e-6), actual


def test_reward_to_go_terminated_mid_batch_never_bootstraps():
    # Episode A: steps 0-1, terminated at 1. Episode B: steps 2-3, still running at the horizon.
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 1, 0, 0), flags(0, 0, 0, 0)
    v_next = col(9, 9, 9, 5)  # V(s_{t+1}); row 1's 9 must be ignored (terminated), row 3's 5 used (horizon)
    # G3 = 4 + 0.1*5 = 4.5 ; G2 = 3 + 0.1*4.5 = 3.45 ; G1 = 2 (terminal) ; G0 = 1 + 0.1*2 = 1.2
    close(returns.reward_to_go(r, term, trunc, G, v_next), col(1.2, 2, 3.45, 4.5))


def test_reward_to_go_truncated_mid_batch_bootstraps_with_the_final_value():
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 0, 0, 0), flags(0, 1, 0, 0)
    v_next = col(9, 7, 9, 5)  # row 1's 7 is V(final obs of the truncated episode)
    # G1 = 2 + 0.1*7 = 2.7 ; G0 = 1 + 0.27 = 1.27 ; G3 = 4.5 ; G2 = 3.45
    close(returns.reward_to_go(r, term, trunc, G, v_next), col(1.27, 2.7, 3.45, 4.5))


def test_reward_to_go_without_values_ends_sums_at_every_boundary():
    r = col(1, 2, 3, 4)
    # truncated at 1 without values: nothing to bootstrap; the horizon adds nothing either
    # G3 = 4 ; G2 = 3.4 ; G1 = 2 ; G0 = 1.2
    close(returns.reward_to_go(r, flags(0, 0, 0, 0), flags(0, 1, 0, 0), G), col(1.2, 2, 3.4, 4))


def test_two_environments_with_different_boundaries():
    r = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    term = torch.tensor([[False, True], [True, False], [False, False]])
    trunc = torch.zeros(3, 2, dtype=torch.bool)
    v_next = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 20.0]])
    # env 0: ends at row 1 -> G1 = 1, G0 = 1.1 ; row 2 runs to the horizon: 1 + 0.1*10 = 2
    # env 1: ends at row 0 -> G0 = 1 ; rows 1-2: G2 = 1 + 0.1*20 = 3, G1 = 1 + 0.3 = 1.3
    expected = torch.tensor([[1.1, 1.0], [1.0, 1.3], [2.0, 3.0]])
    close(returns.reward_to_go(r, term, trunc, G, v_next), expected)


def test_whole_episode_return_is_the_same_number_for_every_step_of_an_episode():
    r = col(1, 2, 3, 4, 5)
    term = flags(0, 0, 1, 0, 1)
    trunc = flags(0, 0, 0, 0, 0)
    # Episode A (rows 0-2): 1 + 0.1*2 + 0.01*3 = 1.23. Episode B (rows 3-4): 4 + 0.5 = 4.5
    close(returns.whole_episode_returns(r, term, trunc, G), col(1.23, 1.23, 1.23, 4.5, 4.5))


def test_whole_episode_return_restarts_after_an_autoreset_step():
    # Row 2 is an autoreset step (valid False, reward 0): the episode after it starts at row 3.
    r = col(1, 2, 0, 3, 4)
    term, trunc = flags(0, 1, 0, 0, 1), flags(0, 0, 0, 0, 0)
    valid = flags(1, 1, 0, 1, 1)
    out = returns.whole_episode_returns(r, term, trunc, G, valid=valid)
    # Episode A: 1 + 0.2 = 1.2 ; episode B (rows 3-4): 3 + 0.4 = 3.4
    assert out[0, 0] == pytest.approx(1.2) and out[1, 0] == pytest.approx(1.2)
    assert out[3, 0] == pytest.approx(3.4) and out[4, 0] == pytest.approx(3.4)


def test_td_errors_by_hand():
    r, v, v_next = col(1, 2, 3), col(0.5, 1.0, 2.0), col(1.0, 4.0, 8.0)
    term = flags(0, 1, 0)
    # d0 = 1 + 0.1*1 - 0.5 = 0.6 ; d1 = 2 + 0 - 1 = 1 (terminal) ; d2 = 3 + 0.8 - 2 = 1.8
    close(returns.td_errors(r, v, v_next, term, G), col(0.6, 1.0, 1.8))


def test_nstep_returns_by_hand():
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 0, 0, 0), flags(0, 1, 0, 0)
    v_next = col(10, 20, 30, 40)
    # n = 2. Row 0: 1 + 0.1*2, cut at row 1 (truncated) -> + 0.01*20 = 1.4
    # Row 1: 2 + 0.1*20 (truncated: bootstrap) = 4
    # Row 2: 3 + 0.1*4 + 0.01*40 (horizon) = 3.8 ; Row 3: 4 + 0.1*40 = 8
    close(returns.nstep_returns(r, term, trunc, v_next, G, n=2), col(1.4, 4.0, 3.8, 8.0))


def test_one_step_return_is_the_td_target():
    r, v_next = col(1, 2, 3), col(5, 6, 7)
    term, trunc = flags(0, 1, 0), flags(0, 0, 0)
    # r + 0.1 * V' unless terminated: 1.5, 2, 3.7
    close(returns.nstep_returns(r, term, trunc, v_next, G, n=1), col(1.5, 2.0, 3.7))
    with pytest.raises(ValueError, match="n=0"):
        returns.nstep_returns(r, term, trunc, v_next, G, n=0)


def test_gae_by_hand_with_lambda_one_half():
    r, v = col(1, 1, 1), col(0, 0, 0)
    v_next = col(0, 0, 10)
    term, trunc = flags(0, 0, 0), flags(0, 0, 0)
    # deltas: 1, 1, 1 + 0.1*10 = 2 ; gamma*lambda = 0.05
    # A2 = 2 ; A1 = 1 + 0.05*2 = 1.1 ; A0 = 1 + 0.05*1.1 = 1.055
    close(returns.gae(r, v, v_next, term, trunc, G, 0.5), col(1.055, 1.1, 2.0))


def test_gae_stops_at_termination_and_truncation():
    r, v = col(1, 1, 1, 1), col(0, 0, 0, 0)
    v_next = col(0, 3, 0, 0)
    term, trunc = flags(1, 0, 0, 0), flags(0, 1, 0, 0)
    # A0 = 1 (terminated, alone). A1 = 1 + 0.1*3 = 1.3 (truncated: bootstrap, recursion stops)
    # A3 = 1 ; A2 = 1 + 0.1*1*1 = 1.1 (lambda = 1)
    close(returns.gae(r, v, v_next, term, trunc, G, 1.0), col(1.0, 1.3, 1.1, 1.0))
