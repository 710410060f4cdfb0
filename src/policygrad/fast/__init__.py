"""Speed paths only: flat optimizers, fused acting, NumPy acting, PPO's fused Gaussian loss. Each computes
what a plain path computes (tests/test_fast_paths.py, test_numpy_acting.py, test_flat_optim.py,
test_fast_continuous.py check it); imports only core."""
