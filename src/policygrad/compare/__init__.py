"""``policygrad compare``: a study whose varied field is the method, every method under one evaluation
protocol.

- :mod:`~policygrad.compare.methods`: the methods (policygrad's algorithms, Stable-Baselines3's, a random
  policy), the protocol, and :func:`~policygrad.compare.methods.compare`;
- :mod:`~policygrad.compare.zoo`: RL Baselines3 Zoo's published settings for the SB3 methods.
"""
