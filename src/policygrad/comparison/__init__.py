"""``policygrad compare``: a study whose varied field is the method, every method under one evaluation
protocol.

- :mod:`~policygrad.comparison.methods`: the methods (policygrad's algorithms, Stable-Baselines3's, a random
  policy), the protocol, and :func:`~policygrad.comparison.methods.compare`;
- :mod:`~policygrad.comparison.zoo`: RL Baselines3 Zoo's published settings for the SB3 methods.
"""
