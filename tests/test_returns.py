"""Returns and advantages against values worked out by hand (gamma = 0.1 gives readable decimals).

Layout of every example: T rows (time), N columns (environments). ``next_values[t]`` is V(s_{t+1}),
the value of the observation step t returned (the final observation when step t ends an episode).
A number the function must ignore is set to 9 or 99 so that using it would show.
"""

import pytest
import torch

from policygrad.core import returns

G = 0.1


def col(*values):
    """A (T, 1) tensor: one environment."""
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


def flags(*values):
    return torch.tensor(values, dtype=torch.bool).unsqueeze(1)


def table(rows, dtype=torch.float32):
    """A (T, N) tensor from a list of rows."""
    return torch.tensor(rows, dtype=dtype)


def close(actual, expected):
    expected = torch.as_tensor(expected, dtype=torch.float32)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, atol=1e-6), actual


# -- reward_to_go -------------------------------------------------------------------------------------
def test_reward_to_go_terminated_mid_batch_never_bootstraps():
    # Episode A: rows 0-1, terminated at 1. Episode B: rows 2-3, still running at the horizon.
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 1, 0, 0), flags(0, 0, 0, 0)
    v_next = col(9, 9, 9, 5)  # row 1's 9 must be ignored (terminated), row 3's 5 used (horizon)
    # G3 = 4 + 0.1*5 = 4.5 ; G2 = 3 + 0.1*4.5 = 3.45 ; G1 = 2 (terminal) ; G0 = 1 + 0.1*2 = 1.2
    close(returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next), col(1.2, 2,
                               3.45, 4.5))


def test_reward_to_go_truncated_mid_batch_bootstraps_with_the_final_value():
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 0, 0, 0), flags(0, 1, 0, 0)
    v_next = col(9, 7, 9, 5)  # row 1's 7 is V(final obs of the truncated episode)
    # G1 = 2 + 0.1*7 = 2.7 ; G0 = 1 + 0.1*2.7 = 1.27 ; G3 = 4 + 0.1*5 = 4.5 ; G2 = 3 + 0.45 = 3.45
    close(returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next), col(1.27,
                               2.7, 3.45, 4.5))


def test_reward_to_go_with_termination_truncation_and_horizon_in_one_batch():
    r = col(1, 2, 3, 4, 5)
    term, trunc = flags(0, 1, 0, 0, 0), flags(0, 0, 0, 1, 0)
    v_next = col(9, 9, 9, 6, 8)
    # horizon:    G4 = 5 + 0.1*8 = 5.8
    # truncated:  G3 = 4 + 0.1*6 = 4.6 (its own V(final obs), not G4) ; G2 = 3 + 0.1*4.6 = 3.46
    # terminated: G1 = 2 ; G0 = 1 + 0.1*2 = 1.2
    close(returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next), col(1.2, 2,
                               3.46, 4.6, 5.8))


def test_reward_to_go_terminated_on_the_last_row_ignores_the_horizon_value():
    r = col(1, 2, 3)
    v_next = col(9, 9, 99)
    # G2 = 3 (terminated: no 0.1*99) ; G1 = 2 + 0.3 = 2.3 ; G0 = 1 + 0.23 = 1.23
    close(returns.reward_to_go(rewards=r, terminated=flags(0, 0, 1), truncated=flags(0, 0, 0), gamma=G,
                               next_values=v_next), col(1.23, 2.3, 3))


def test_reward_to_go_horizon_bootstrap_uses_the_last_next_value():
    r = col(1, 1, 1)
    no = flags(0, 0, 0)
    # No episode end: G2 = 1 + 0.1*10 = 2 ; G1 = 1 + 0.2 = 1.2 ; G0 = 1 + 0.12 = 1.12
    close(returns.reward_to_go(rewards=r, terminated=no, truncated=no, gamma=G, next_values=col(9, 9, 10)), col(1.12,
                               1.2, 2))
    # Without next_values the horizon adds nothing: 1.11, 1.1, 1
    close(returns.reward_to_go(rewards=r, terminated=no, truncated=no, gamma=G), col(1.11, 1.1, 1))


def test_reward_to_go_without_values_ends_sums_at_every_boundary():
    r = col(1, 2, 3, 4)
    # truncated at 1 without values: nothing to bootstrap; the horizon adds nothing either
    # G3 = 4 ; G2 = 3 + 0.4 = 3.4 ; G1 = 2 ; G0 = 1 + 0.2 = 1.2
    close(returns.reward_to_go(rewards=r, terminated=flags(0, 0, 0, 0), truncated=flags(0, 1, 0, 0), gamma=G),
                               col(1.2, 2, 3.4, 4))


def test_reward_to_go_two_environments_with_different_boundaries():
    r = table([[1, 2], [1, 2], [1, 2], [1, 2]])
    term = table([[0, 0], [1, 0], [0, 0], [0, 1]], torch.bool)
    trunc = table([[0, 1], [0, 0], [0, 0], [0, 0]], torch.bool)
    v_next = table([[9, 5], [99, 9], [9, 9], [10, 30]])
    # env 0: terminated at 1 -> G1 = 1, G0 = 1 + 0.1*1 = 1.1 ; rows 2-3 run to the horizon:
    #        G3 = 1 + 0.1*10 = 2, G2 = 1 + 0.1*2 = 1.2
    # env 1: truncated at 0 -> G0 = 2 + 0.1*5 = 2.5 ; rows 1-3 terminated at 3 (30 ignored):
    #        G3 = 2, G2 = 2 + 0.2 = 2.2, G1 = 2 + 0.22 = 2.22
    expected = [[1.1, 2.5], [1.0, 2.22], [1.2, 2.2], [2.0, 2.0]]
    close(returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next), expected)


# -- whole_episode_returns ----------------------------------------------------------------------------
def test_whole_episode_return_is_the_same_number_for_every_step_of_an_episode():
    r = col(1, 2, 3, 4, 5)
    term = flags(0, 0, 1, 0, 1)
    trunc = flags(0, 0, 0, 0, 0)
    # Episode A (rows 0-2): 1 + 0.1*2 + 0.01*3 = 1.23. Episode B (rows 3-4): 4 + 0.1*5 = 4.5
    close(returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G), col(1.23, 1.23, 1.23,
                                        4.5, 4.5))


def test_whole_episode_return_of_a_truncated_episode_bootstraps_only_with_next_values():
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 0, 0, 0), flags(0, 1, 0, 0)
    v_next = col(9, 10, 9, 20)
    # With values. Episode A (rows 0-1, truncated): 1 + 0.1*2 + 0.01*10 = 1.3
    #              Episode B (rows 2-3, horizon):   3 + 0.1*4 + 0.01*20 = 3.6
    close(returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next),
                                        col(1.3, 1.3, 3.6, 3.6))
    # Without values (vanilla REINFORCE, no critic): 1 + 0.2 = 1.2 ; 3 + 0.4 = 3.4
    close(returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G), col(1.2, 1.2, 3.4, 3.4))


def test_whole_episode_return_two_environments_with_different_boundaries():
    r = table([[1, 1], [2, 1], [3, 1]])
    term = table([[1, 0], [0, 0], [1, 0]], torch.bool)
    trunc = table([[0, 0], [0, 0], [0, 1]], torch.bool)
    v_next = table([[99, 9], [9, 9], [99, 10]])
    # env 0: episode row 0 -> 1 ; episode rows 1-2 -> 2 + 0.1*3 = 2.3 (terminated: 99 ignored)
    # env 1: one episode truncated at row 2 -> 1 + 0.1*1 + 0.01*1 + 0.001*10 = 1.12
    expected = [[1.0, 1.12], [2.3, 1.12], [2.3, 1.12]]
    close(returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next),
                                        expected)


def test_whole_episode_return_restarts_after_an_autoreset_step():
    # Row 2 is an autoreset step (valid False, reward 0): the episode after it starts at row 3.
    r = col(1, 2, 0, 3, 4)
    term, trunc = flags(0, 1, 0, 0, 1), flags(0, 0, 0, 0, 0)
    valid = flags(1, 1, 0, 1, 1)
    out = returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G, valid=valid)
    # Episode A: 1 + 0.1*2 = 1.2 ; episode B (rows 3-4): 3 + 0.1*4 = 3.4 (row 2 is never learned from)
    close(out[[0, 1, 3, 4]], col(1.2, 1.2, 3.4, 3.4))


def test_whole_episode_return_valid_mask_alone_starts_a_new_episode():
    # No end flag before row 2, only the invalid row 1: the valid mask must start episode B at row 2.
    r = col(1, 0, 2, 3)
    term, trunc = flags(0, 0, 0, 1), flags(0, 0, 0, 0)
    valid = flags(1, 0, 1, 1)
    # reward-to-go: G3 = 3 ; G2 = 2 + 0.3 = 2.3 ; G1 = 0 + 0.23 = 0.23 ; G0 = 1 + 0.023 = 1.023
    # rows 2-3 take G2 = 2.3 (a new episode), not row 0's 1.023
    out = returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G, valid=valid)
    close(out[[0, 2, 3]], col(1.023, 2.3, 2.3))
    # Without the mask it is one episode: 1.023 everywhere
    close(returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G), col(1.023, 1.023,
                                        1.023, 1.023))


def test_whole_episode_return_mask_is_per_environment():
    r = table([[1, 1], [0, 2], [2, 3]])
    term = table([[0, 0], [0, 0], [1, 1]], torch.bool)
    trunc = torch.zeros(3, 2, dtype=torch.bool)
    valid = table([[1, 1], [0, 1], [1, 1]], torch.bool)
    # env 0: row 1 invalid -> row 2 alone: 2 (row 0: 1 + 0.1*(0 + 0.1*2) = 1.02)
    # env 1: all valid -> one episode: 1 + 0.1*2 + 0.01*3 = 1.23 everywhere
    out = returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G, valid=valid)
    close(out[[0, 2]], [[1.02, 1.23], [2.0, 1.23]])
    assert out[1, 1] == pytest.approx(1.23)


# -- td_errors ------------------------------------------------------------------------------------------
def test_td_errors_by_hand():
    r, v, v_next = col(1, 2, 3), col(0.5, 1.0, 2.0), col(1.0, 4.0, 8.0)
    term = flags(0, 1, 0)
    # d0 = 1 + 0.1*1 - 0.5 = 0.6 ; d1 = 2 + 0 - 1 = 1 (terminal: 4 ignored) ; d2 = 3 + 0.1*8 - 2 = 1.8
    close(returns.td_errors(rewards=r, values=v, next_values=v_next, terminated=term, gamma=G), col(0.6, 1.0, 1.8))


def test_td_errors_two_environments():
    r = table([[1, 2], [1, 2]])
    v = table([[1, 2], [3, 4]])
    v_next = table([[3, 4], [5, 6]])
    term = table([[0, 1], [1, 0]], torch.bool)
    # env 0: d0 = 1 + 0.3 - 1 = 0.3 ; d1 = 1 - 3 = -2 (terminal)
    # env 1: d0 = 2 - 2 = 0 (terminal) ; d1 = 2 + 0.6 - 4 = -1.4
    close(returns.td_errors(rewards=r, values=v, next_values=v_next, terminated=term, gamma=G), [[0.3, 0.0], [-2.0,
                            -1.4]])


# -- nstep_returns ---------------------------------------------------------------------------------------
def test_nstep_returns_truncation_inside_the_window_bootstraps_there():
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 0, 0, 0), flags(0, 1, 0, 0)
    v_next = col(10, 20, 30, 40)
    # n = 2. Row 0: 1 + 0.1*2, cut at row 1 (truncated) -> + 0.01*20 = 1.4
    # Row 1: 2 + 0.1*20 (truncated: bootstrap) = 4
    # Row 2: 3 + 0.1*4 + 0.01*40 (horizon) = 3.8 ; Row 3: 4 + 0.1*40 = 8
    close(returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=2),
                                col(1.4, 4.0, 3.8, 8.0))


def test_nstep_returns_termination_inside_the_window_never_bootstraps():
    r = col(1, 2, 3, 4)
    term, trunc = flags(0, 1, 0, 0), flags(0, 0, 0, 0)
    v_next = col(10, 20, 30, 40)
    # n = 2. Row 0: 1 + 0.1*2 = 1.2 (terminated at row 1: no 0.01*20) ; Row 1: 2
    # Row 2: 3 + 0.1*4 + 0.01*40 = 3.8 ; Row 3: 4 + 0.1*40 = 8
    close(returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=2),
                                col(1.2, 2.0, 3.8, 8.0))


def test_nstep_returns_full_window_and_horizon():
    r = col(1, 2, 3, 4)
    no = flags(0, 0, 0, 0)
    v_next = col(10, 20, 30, 40)
    # n = 3. Row 0: 1 + 0.1*2 + 0.01*3 + 0.001*30 = 1.26 (bootstrap with V(s_3) = v_next[2])
    # Row 1: 2 + 0.1*3 + 0.01*4 + 0.001*40 = 2.38
    # Row 2: 3 + 0.1*4 + 0.01*40 = 3.8 (horizon after 2 steps) ; Row 3: 4 + 0.1*40 = 8
    close(returns.nstep_returns(rewards=r, terminated=no, truncated=no, next_values=v_next, gamma=G, n=3), col(1.26,
                                2.38, 3.8, 8.0))


def test_nstep_returns_two_environments_with_different_boundaries():
    r = table([[1, 2], [1, 2], [1, 2]])
    term = table([[1, 0], [0, 0], [0, 1]], torch.bool)
    trunc = table([[0, 0], [0, 1], [0, 0]], torch.bool)
    v_next = table([[99, 9], [10, 5], [20, 99]])
    # n = 2.
    # env 0: row 0 terminated -> 1 ; row 1: 1 + 0.1*1 + 0.01*20 (horizon) = 1.3 ; row 2: 1 + 0.1*20 = 3
    # env 1: row 0: 2 + 0.1*2 + 0.01*5 (truncated at 1) = 2.25 ; row 1: 2 + 0.1*5 = 2.5 ;
    #        row 2: 2 (terminated)
    expected = [[1.0, 2.25], [1.3, 2.5], [3.0, 2.0]]
    close(returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=2),
                                expected)


def test_one_step_return_is_the_td_target():
    r, v_next = col(1, 2, 3, 4), col(5, 6, 7, 8)
    term, trunc = flags(0, 1, 0, 0), flags(0, 0, 1, 0)
    # r + 0.1 * V' unless terminated: 1 + 0.5 = 1.5 ; 2 (terminated) ; 3 + 0.7 = 3.7 (truncated) ; 4.8
    out = returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=1)
    close(out, col(1.5, 2.0, 3.7, 4.8))
    values = col(0.25, 0.5, 0.75, 1.0)
    close(out - values, returns.td_errors(rewards=r, values=values, next_values=v_next, terminated=term, gamma=G))


def test_nstep_longer_than_the_batch_is_the_bootstrapped_reward_to_go():
    r = table([[1, 2], [3, 4], [5, 6], [7, 8]])
    term = table([[0, 0], [1, 0], [0, 0], [0, 1]], torch.bool)
    trunc = table([[0, 1], [0, 0], [0, 0], [0, 0]], torch.bool)
    v_next = table([[9, 10], [11, 12], [13, 14], [15, 16]])
    expected = returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next)
    close(returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=4),
                                expected)
    close(returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=50),
                                expected)


def test_nstep_rejects_n_below_one():
    r = col(1, 2)
    with pytest.raises(ValueError, match="n=0"):
        returns.nstep_returns(rewards=r, terminated=flags(0, 0), truncated=flags(0, 0), next_values=r, gamma=G, n=0)


# -- gae ----------------------------------------------------------------------------------------------------
def test_gae_by_hand_with_lambda_one_half():
    r, v = col(1, 1, 1), col(0, 0, 0)
    v_next = col(0, 0, 10)
    term, trunc = flags(0, 0, 0), flags(0, 0, 0)
    # deltas: 1, 1, 1 + 0.1*10 = 2 (horizon bootstrap) ; gamma*lambda = 0.05
    # A2 = 2 ; A1 = 1 + 0.05*2 = 1.1 ; A0 = 1 + 0.05*1.1 = 1.055
    close(returns.gae(rewards=r, values=v, next_values=v_next, terminated=term, truncated=trunc, gamma=G,
                      gae_lambda=0.5), col(1.055, 1.1, 2.0))


def test_gae_stops_at_termination_and_truncation():
    r, v = col(1, 1, 1, 1), col(0, 0, 0, 0)
    v_next = col(9, 3, 0, 0)
    term, trunc = flags(1, 0, 0, 0), flags(0, 1, 0, 0)
    # A0 = 1 (terminated: 9 ignored, and A1 does not leak in). A1 = 1 + 0.1*3 = 1.3 (truncated:
    # bootstrap, recursion stops). A3 = 1 ; A2 = 1 + 0.1*1*1 = 1.1 (lambda = 1)
    close(returns.gae(rewards=r, values=v, next_values=v_next, terminated=term, truncated=trunc, gamma=G,
                      gae_lambda=1.0), col(1.0, 1.3, 1.1, 1.0))


def test_gae_two_environments_with_different_boundaries():
    r = table([[1, 2], [1, 2], [1, 2]])
    v = table([[0.5, 1], [0.5, 1], [0.5, 1]])
    v_next = table([[0.5, 1], [0.5, 4], [2, 1]])
    term = table([[1, 0], [0, 0], [0, 0]], torch.bool)
    trunc = table([[0, 0], [0, 1], [0, 0]], torch.bool)
    # lambda = 0.5, gamma*lambda = 0.05.
    # env 0: d0 = 1 - 0.5 = 0.5 (terminated) ; d1 = 1 + 0.05 - 0.5 = 0.55 ; d2 = 1 + 0.2 - 0.5 = 0.7
    #        A2 = 0.7 ; A1 = 0.55 + 0.05*0.7 = 0.585 ; A0 = 0.5
    # env 1: d0 = 2 + 0.1 - 1 = 1.1 ; d1 = 2 + 0.4 - 1 = 1.4 (truncated) ; d2 = 2 + 0.1 - 1 = 1.1
    #        A2 = 1.1 ; A1 = 1.4 (stops) ; A0 = 1.1 + 0.05*1.4 = 1.17
    expected = [[0.5, 1.17], [0.585, 1.4], [0.7, 1.1]]
    close(returns.gae(rewards=r, values=v, next_values=v_next, terminated=term, truncated=trunc, gamma=G,
                      gae_lambda=0.5), expected)


def boundary_example():
    """A (5, 2) batch with a termination, a truncation and a running episode at the horizon, whose
    ``next_values`` agree with ``values`` inside episodes (as a critic's would)."""
    r = table([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]])
    v = table([[0.5, 1.5], [2.5, 3.5], [4.5, 5.5], [6.5, 7.5], [8.5, 9.5]])
    # Inside an episode V(s_{t+1}) is the next row's V(s_t); at an end it is V(final obs), or unused (99)
    v_next = table([[2.5, 3.5], [99, 4], [6.5, 7.5], [7, 99], [9, 10]])
    term = table([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]], torch.bool)
    trunc = table([[0, 0], [0, 1], [0, 0], [1, 0], [0, 0]], torch.bool)
    return r, v, v_next, term, trunc


def test_gae_lambda_zero_is_the_td_error():
    r, v, v_next, term, trunc = boundary_example()
    close(returns.gae(rewards=r, values=v, next_values=v_next, terminated=term, truncated=trunc, gamma=G,
                      gae_lambda=0.0), returns.td_errors(rewards=r, values=v, next_values=v_next, terminated=term,
                                                         gamma=G))


def test_gae_lambda_one_is_reward_to_go_minus_values():
    r, v, v_next, term, trunc = boundary_example()
    expected = returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next) - v
    close(returns.gae(rewards=r, values=v, next_values=v_next, terminated=term, truncated=trunc, gamma=G,
                      gae_lambda=1.0), expected)


def test_functions_do_not_modify_their_inputs():
    r, v, v_next, term, trunc = boundary_example()
    before = [x.clone() for x in (r, v, v_next, term, trunc)]
    returns.reward_to_go(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next)
    returns.whole_episode_returns(rewards=r, terminated=term, truncated=trunc, gamma=G, next_values=v_next, valid=~term)
    returns.nstep_returns(rewards=r, terminated=term, truncated=trunc, next_values=v_next, gamma=G, n=3)
    returns.gae(rewards=r, values=v, next_values=v_next, terminated=term, truncated=trunc, gamma=G, gae_lambda=0.9)
    for x, y in zip((r, v, v_next, term, trunc), before):
        assert torch.equal(x, y)
