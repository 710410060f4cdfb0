# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned, so nothing resolves a CUDA build behind our back.
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/policygrad train ppo --env CartPole-v1 --total-steps 100000 --run-dir $(DEMO) --overwrite
	$(VENV)/bin/policygrad eval $(DEMO) --episodes 20
	$(VENV)/bin/policygrad plot $(DEMO) --out $(DEMO)/learning_curve.png
	@echo "learning curve: $(DEMO)/learning_curve.png   (tensorboard --logdir runs)"

# The layering contract and the type check run first: CI (.ci/run -> make test) fails on either.
test: lint
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -s --timeout 7200

# Side-by-side speed against Stable-Baselines3 (about 20 minutes; writes benchmarks/results/RESULTS.md).
# BENCH_ARGS=--quick for a smoke run of every section.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# ruff (style), lint-imports (the layers of docs/architecture.md, .importlinter), mypy (src/, pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
