"""docs/architecture.md stays true: its worked examples (an estimator registered from outside the
package, a new algorithm) run, PPO's maths reads in the four files it names, and the estimator
registry and the algorithm contract behave as it says. (The layering itself is checked by
lint-imports in make lint, which make test runs first.)"""

import ast
import re
from pathlib import Path

import pytest
import torch

import policygrad as pg
from policygrad.algos import ALGORITHMS
from policygrad.algos.base import Algorithm, AsynchronousAlgorithm
from policygrad.core import returns

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SRC = ROOT / "src" / "policygrad"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of ``text`` with the line each starts on."""
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


@pytest.fixture
def clean_registries():
    estimators, algorithms = dict(returns.ESTIMATORS), dict(ALGORITHMS)
    yield
    returns.ESTIMATORS.clear()
    returns.ESTIMATORS.update(estimators)
    ALGORITHMS.clear()
    ALGORITHMS.update(algorithms)


def test_the_worked_examples_run(tmp_path, monkeypatch, clean_registries):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ARCHITECTURE.read_text())
    assert len(blocks) == 2
    for first_line, code in blocks:
        namespace: dict = {"__name__": "architecture_example"}
        exec(compile("\n" * (first_line - 1) + code, str(ARCHITECTURE), "exec"), namespace)
    # the estimator example trained A2C with it; the algorithm example trained, saved and loaded
    assert "two_step" in returns.ESTIMATORS
    assert (tmp_path / "runs" / "two_step" / "eval.json").is_file()
    assert pg.load(tmp_path / "runs" / "a2c_epochs").config.algo == "a2c_epochs"
    header = (tmp_path / "runs" / "a2c_epochs" / "metrics.csv").read_text().splitlines()[0]
    assert "losses/policy" in header and "diag/skipped_steps" in header


def imported_policygrad_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module and node.module.startswith("policygrad")}


def test_ppo_reads_in_four_files_of_maths():
    # Besides its own file: the shared loop, returns (through the loop), losses; the rest it names
    # are the contract, plain config helpers and the types of its arguments, the speed path that
    # computes its loss for the Gaussian head (fast/fused_loss.py, checked against the plain loss), and
    # the opt-in diagnostic its update reports its steps to (algos/grad_noise.py, through a hook: the
    # update reads the same with it off), and the sequence minibatches of a recurrent network
    # (algos/sequences.py).
    imports = imported_policygrad_modules(SRC / "algos" / "ppo.py")
    assert imports == {"policygrad.algos.base", "policygrad.algos.grad_noise", "policygrad.algos.on_policy",
                       "policygrad.algos.sequences", "policygrad.core", "policygrad.core.config",
                       "policygrad.core.envs", "policygrad.core.networks", "policygrad.fast.fused_loss"}
    update = (SRC / "algos" / "ppo.py").read_text().split("    def update(")[1]
    assert "noise" not in update and "speed_paths" not in update
    assert "from policygrad.core import losses" in (SRC / "algos" / "ppo.py").read_text()
    assert "from policygrad.core import losses, returns" in (SRC / "algos" / "on_policy.py").read_text()


def test_every_registered_algorithm_implements_one_of_the_two_contracts():
    for name, cls in ALGORITHMS.items():
        assert issubclass(cls, (Algorithm, AsynchronousAlgorithm)), name
        assert cls.Config().algo == name  # a config names its algorithm, so checkpoints can rebuild it


def test_estimator_functions_take_keywords_only():
    r = torch.ones(3, 1)
    flags = torch.zeros(3, 1, dtype=torch.bool)
    with pytest.raises(TypeError):
        returns.gae(r, r, r, flags, flags, 0.9, 0.5)  # positional: terminated/truncated could be swapped
    with pytest.raises(TypeError):
        returns.reward_to_go(r, flags, flags, 0.9)


def test_every_builtin_estimator_agrees_with_the_function_it_wraps():
    torch.manual_seed(0)
    r, v = torch.randn(6, 2), torch.randn(6, 2)
    nv = torch.cat([v[1:], torch.randn(1, 2)])  # V(s_{t+1}) is the next row's V(s), as in a real rollout
    term = torch.tensor([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0], [0, 0]], dtype=torch.bool)
    trunc = torch.tensor([[0, 0], [0, 0], [0, 1], [0, 0], [0, 0], [0, 0]], dtype=torch.bool)
    data = dict(rewards=r, values=v, next_values=nv, terminated=term, truncated=trunc, gamma=0.9)
    gae = returns.estimate("gae", **data, params={"gae_lambda": 0.7, "unused_field": 1})
    assert torch.allclose(gae.advantages, returns.gae(**data, gae_lambda=0.7))
    assert torch.allclose(gae.targets, gae.advantages + v)
    td = returns.estimate("td", **data)
    assert torch.allclose(td.advantages, returns.td_errors(rewards=r, values=v, next_values=nv, terminated=term,
                                                           gamma=0.9))
    nstep = returns.estimate("nstep", **data)
    assert torch.allclose(nstep.advantages, returns.estimate("gae", **data, params={"gae_lambda": 1.0}).advantages,
                          atol=1e-5)  # n-step to the horizon is GAE with lambda 1


def test_the_registry_refuses_a_second_estimator_under_one_name_and_names_the_known_ones(clean_registries):
    with pytest.raises(ValueError, match="already registered"):
        returns.register_estimator("gae")(lambda **kw: None)
    with pytest.raises(ValueError, match="gae | nstep | td"):
        returns.estimate("nope", rewards=torch.ones(1, 1), values=torch.ones(1, 1), next_values=torch.ones(1, 1),
                         terminated=torch.zeros(1, 1, dtype=torch.bool), truncated=torch.zeros(1, 1, dtype=torch.bool),
                         gamma=0.9)
    with pytest.raises(ValueError, match="advantage_estimator"):
        pg.A2CConfig(advantage_estimator="nope")


def test_the_gradient_diagnostics_are_in_the_public_api():
    from policygrad.diagnostics.diagnose import diagnose_gradients

    assert "diagnose_gradients" in pg.__all__ and pg.diagnose_gradients is diagnose_gradients


def test_importing_policygrad_or_building_the_command_line_loads_neither_scipy_nor_the_reports():
    """Every study worker and A3C worker imports policygrad, and every command builds the parser: scipy.stats
    (0.5-1 s) and the report modules load only where a report or a statistic is made."""
    import subprocess
    import sys

    code = ("import sys, policygrad, policygrad.cli; policygrad.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('scipy', 'policygrad.reporting.statistics', "
            "'policygrad.studies.report', 'policygrad.diagnostics.diagnose', 'policygrad.diagnostics.statistics'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
