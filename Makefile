# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: demo test test-slow lint clean

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

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -s --timeout 7200

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
