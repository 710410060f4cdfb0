"""Speed paths only: flat optimizers, fused acting, NumPy acting. Each computes what a plain path
computes (tests/test_fast_paths.py, test_numpy_acting.py, test_flat_optim.py check it); imports only core."""
