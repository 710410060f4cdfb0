"""The Ray backend of studies (issue 15): ``--backend ray [--address ADDR]``.

A real 2-node Ray cluster on this machine (Ray's own harness, ``ray.cluster_utils.Cluster``), shared by
the module: loopback only (node IP 127.0.0.2, which Ray keeps as given, unlike 127.0.0.1), usage stats
off, Ray's files in a short temporary directory of the module's own (Unix socket paths are limited to
~107 characters), token authentication on (the driver, in this process or a subprocess, passes the
token through RAY_AUTH_MODE/RAY_AUTH_TOKEN; nothing goes to ~/.ray). Only what the module started is
stopped (``cluster.shutdown()``): never ``ray stop``, which would end every Ray process on the machine.

The promises: a study on the cluster ends with the local study's results.csv and the same run
directories; a node removed mid-study and a worker process killed: the run is retried, resuming from
the last checkpoint its node sent, and the study completes; a driver killed and run again resumes;
without Ray, ``--backend ray`` is one line and exit 2."""

import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import policygrad as pg
from policygrad.cli import main
from policygrad.studies.backends.transfer import checked_path, read_tree, write_final

try:
    import ray
    from ray.cluster_utils import Cluster
except ImportError:  # the tests below that need a cluster skip; the one about Ray missing still runs
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed: pip install 'policygrad[ray]' (CI has it)")

TESTS = Path(__file__).parent
LOOPBACK = "127.0.0.2"
# test_study_runner.py's study: PPO on CartPole, 2 learning rates x 2 seeds, 6k steps each (a few seconds
# a run), periodic checkpoints every 1024 steps, so that a run part way has checkpoints to travel.
SWEEP = ["sweep", "ppo", "--env", "CartPole-v1", "--vary", "learning_rate=1e-3,3e-3", "--seeds", "2",
         "--total-steps", "6k", "--eval-every", "1000", "--eval-episodes", "3", "--threshold", "150",
         "--checkpoint-every", "1024", "--workers", "2", "--name", "lr"]
RUN_FILES = ("eval.json", "checkpoint/model.safetensors", "checkpoint/optimizer.safetensors")


def read_rows(path: Path, drop=("wall_seconds",)) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def records(study: Path) -> dict[str, list[str]]:
    """Every file of the study's run directories (lock files aside, which stay with the process that
    trained the run), by run."""
    return {run.name: sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()
                             and not p.name.startswith(".lock")) for run in sorted((study / "runs").iterdir())}


def resumed_runs(study: Path) -> list[str]:
    return sorted(p.parent.name for p in (study / "runs").glob("*/config.json")
                  if json.loads(p.read_text()).get("resumes"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a worker node, one CPU each, on 127.0.0.2; its address in ``cluster.address``."""
    if ray is None:
        pytest.skip("Ray is not installed: pip install 'policygrad[ray]'")
    tmp_path_factory.getbasetemp()  # pytest's own temporary directory, chosen before TMPDIR changes below
    base = Path(tempfile.mkdtemp(prefix="pgray", dir="/tmp"))  # short: Ray's socket paths go under it
    (base / "ray").mkdir()
    (base / "markers").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        env.setenv("RAY_TMPDIR", str(base))  # where Ray records the current cluster's address, not /tmp/ray
        env.setenv("TMPDIR", str(base))  # the runs' scratch directories on the nodes
        env.setenv("RAY_AUTH_MODE", "token")
        env.setenv("RAY_AUTH_TOKEN", secrets.token_hex(16))
        # The nodes' worker processes inherit this environment: tests/faulty_envs.py importable there.
        env.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]))
        env.setenv("FAULTY_ENVS_MARKERS", str(base / "markers"))
        # This process read the auth settings when Ray was imported: Ray's test helper reloads them.
        from ray._private.authentication_test_utils import reset_auth_token_state

        reset_auth_token_state()
        started = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "node_ip_address": LOOPBACK, "temp_dir": str(base / "ray"), "include_dashboard": False})
        try:
            started.add_node(num_cpus=1, node_ip_address=LOOPBACK)
            started.wait_for_nodes()
            yield started
        finally:
            if ray.is_initialized():
                ray.shutdown()
            started.shutdown()
            shutil.rmtree(base, ignore_errors=True)
    reset_auth_token_state()  # the environment is back as it was: so is Ray's view of it


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The study on the local backend (worker processes on this machine)."""
    out = tmp_path_factory.mktemp("local")
    assert main([*SWEEP, "--out-dir", str(out)]) == 0
    return out / "lr"


# The node-removal test's study: SWEEP's, on CartPole-v1 slowed by 1 ms a step while the marker file
# exists, so that a run is still training when the watcher sees its first checkpoints arrive, however fast
# or loaded the machine (at full speed a quiet machine finished the runs before they could be caught).
SLOW_ENV = "faulty_envs:cartpole_slow_when_marked"
SLOW_SWEEP = dict(vary={"learning_rate": [1e-3, 3e-3]}, seeds=2, total_steps=6000, eval_every=1000,
                  eval_episodes=3, threshold=150, checkpoint_every=1024, workers=2, name="lr", verbose=False)


@pytest.fixture(scope="module")
def slow_reference(cluster, tmp_path_factory):
    """The node-removal test's study on the local backend, at full speed (no marker)."""
    out = tmp_path_factory.mktemp("local_slow_env")
    assert not (Path(os.environ["FAULTY_ENVS_MARKERS"]) / "slow").exists()
    return pg.sweep("ppo", SLOW_ENV, out_dir=out, **SLOW_SWEEP).study_dir


@needs_ray
def test_a_study_on_a_two_node_cluster_equals_the_local_study(cluster, reference, tmp_path, capsys):
    assert main([*SWEEP, "--out-dir", str(tmp_path), "--backend", "ray", "--address", cluster.address]) == 0
    out = capsys.readouterr().out
    assert f"to run on the Ray cluster at {cluster.address} (2 nodes, 2 CPUs), 2 runs at a time" in out
    study = tmp_path / "lr"
    rows = read_rows(study / "results.csv")
    assert rows == read_rows(reference / "results.csv") and len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert all(float(r["wall_seconds"]) > 0 for r in read_rows(study / "results.csv", drop=()))
    # The runs' records travelled back whole: the same files as a local study's, bit-identical weights
    # and evaluations (only wall-clock columns differ in the CSV logs).
    assert records(study) == records(reference)
    for run in rows:
        ours, local = study / "runs" / run["run_id"], reference / "runs" / run["run_id"]
        for name in RUN_FILES:
            assert (ours / name).read_bytes() == (local / name).read_bytes(), name
        assert read_rows(ours / "evals.csv") == read_rows(local / "evals.csv")
        assert read_rows(ours / "metrics.csv", drop=("wall_time", "perf/sps")) == \
            read_rows(local / "metrics.csv", drop=("wall_time", "perf/sps"))
        assert json.loads((ours / "config.json").read_text())["config"] == \
            json.loads((local / "config.json").read_text())["config"]
    assert not ray.is_initialized()  # the CLI disconnected; the cluster it did not start is still up
    assert all(node.remaining_processes_alive() for node in cluster.list_all_nodes())


@needs_ray
@pytest.mark.slow  # ~50 s on 2 cores with its reference study (make test-slow): the default suite keeps under 10 min
def test_a_node_removed_mid_study_the_run_resumes_elsewhere_and_the_study_completes(cluster, slow_reference,
                                                                                     tmp_path):
    from policygrad.studies.backends.ray_cluster import RayBackend

    said: list[str] = []
    backend = RayBackend(cluster.address, echo=said.append)
    workers = {node.node_id: node for node in cluster.list_all_nodes() if node is not cluster.head_node}
    study = tmp_path / "lr"
    victim: dict[str, str] = {}

    def remove_a_busy_node() -> None:
        """Once a run on the worker node has sent a periodic checkpoint and is still training, remove that
        node. (Any checkpoint before the last will do: on a loaded machine the driver may receive the
        first ones late.)"""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not victim:
            for run_id, (node_id, _pid) in list(backend.running.items()):
                latest = study / "runs" / run_id / "checkpoints" / "latest"
                if node_id in workers and latest.is_file() and latest.read_text().strip() <= "step_000004096":
                    victim.update(run=run_id, step=str(int(latest.read_text().strip()[5:])))
                    cluster.remove_node(workers[node_id])
                    break
            time.sleep(0.01)

    slow = Path(os.environ["FAULTY_ENVS_MARKERS"]) / "slow"
    watcher = threading.Thread(target=remove_a_busy_node, daemon=True)
    watcher.start()
    try:
        slow.touch()
        with backend:
            result = pg.sweep("ppo", SLOW_ENV, out_dir=tmp_path, backend=backend, **SLOW_SWEEP)
        watcher.join(5)
    finally:
        slow.unlink()
        if len(cluster.list_all_nodes()) < 2:  # the next tests get two nodes again
            cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
            cluster.wait_for_nodes()
    assert victim, "no run on the worker node was caught part way"
    assert not result.failed
    assert read_rows(study / "results.csv") == read_rows(slow_reference / "results.csv")
    retry = [line for line in said if line.startswith(f"  {victim['run']}: its Ray task was lost (")]
    assert len(retry) == 1, said
    assert "(NodeDiedError: Task failed because the node it was running on is dead or unavailable)" in retry[0]
    # It resumed from the last checkpoint the driver had received (not from zero), on the head node.
    resumes = json.loads((study / "runs" / victim["run"] / "config.json").read_text())["resumes"]
    assert len(resumes) == 1 and resumes[0]["global_step"] >= int(victim["step"]), resumes
    assert retry[0].endswith(f"retrying it from its checkpoint at step {resumes[0]['global_step']}")
    for name in RUN_FILES:
        assert (study / "runs" / victim["run"] / name).read_bytes() == \
            (slow_reference / "runs" / victim["run"] / name).read_bytes(), name


@needs_ray
@pytest.mark.slow  # make test-slow: the default suite keeps under 10 minutes on 2 cores
def test_a_failing_run_is_recorded_and_killed_worker_processes_are_retried_a_bounded_number_of_times(cluster, tmp_path):
    from policygrad.studies.backends.ray_cluster import RayBackend

    # faulty_envs.FailsBySeed: seed 2 raises (failed, not retried), seed 3 SIGKILLs its worker process
    # once (retried, done), seed 4 every time (failed once its retries are spent: 1 here)
    said: list[str] = []
    with RayBackend(cluster.address, retries=1, echo=said.append) as backend:
        result = pg.sweep("a2c", "faulty_envs:FailsBySeed", seeds=4, total_steps=400, num_envs=1, eval_every=100,
                          eval_episodes=2, workers=2, out_dir=tmp_path, backend=backend, verbose=False)
    rows = {r["seed"]: r for r in result.results}
    assert [rows[s]["status"] for s in (1, 2, 3, 4)] == ["done", "failed", "done", "failed"]
    assert rows[2]["error"] == "RuntimeError: boom: the environment failed on purpose"
    assert "boom" in (result.study_dir / "runs" / "seed=2" / "error.txt").read_text()  # the traceback came back
    assert rows[4]["error"].startswith("its Ray task was lost 2 times (last: ") and rows[4]["final_eval"] is None
    assert "(last: WorkerCrashedError: " in rows[4]["error"], rows[4]["error"]
    assert [line.split(":")[0].strip() for line in said] == ["seed=3", "seed=4"], said
    assert rows[1]["final_eval"] is not None and rows[3]["final_eval"] is not None


@needs_ray
@pytest.mark.slow  # make test-slow: the default suite keeps under 10 minutes on 2 cores
def test_a_killed_driver_run_again_resumes_the_study(cluster, reference, tmp_path):
    args = [*SWEEP, "--out-dir", str(tmp_path), "--backend", "ray", "--address", cluster.address]
    proc = subprocess.Popen([sys.executable, "-m", "policygrad.cli", *args], cwd=TESTS, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    study = tmp_path / "lr"
    deadline = time.monotonic() + 600  # an upper bound: a loaded 2-core machine needed minutes to get here
    while not list((study / "runs").glob("*/checkpoints/latest")):  # a checkpoint reached the driver
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: Ray ends the tasks of a driver that died
    proc.wait()
    assert not (study / "results.csv").exists() or len(read_rows(study / "results.csv")) < 4
    assert main(["sweep", "--resume", str(study), "--backend", "ray", "--address", cluster.address]) == 0
    assert resumed_runs(study)  # at least one run went on from a checkpoint its node had sent
    assert read_rows(study / "results.csv") == read_rows(reference / "results.csv")


def test_without_ray_the_ray_backend_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails, as without the extra
    assert main([*SWEEP, "--out-dir", str(tmp_path), "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'policygrad[ray]'" in err, err
    assert not (tmp_path / "lr").exists()  # nothing ran
    with pytest.raises(ValueError, match=r"pip install 'policygrad\[ray\]'"):
        pg.sweep("ppo", total_steps=1000, seeds=1, out_dir=tmp_path, backend="ray", verbose=False)


@pytest.mark.parametrize("args, message", [
    (["--address", "127.0.0.2:6379"], "--address 127.0.0.2:6379 is for --backend ray"),
    (["--backend", "dask"], "argument --backend: invalid choice: 'dask'"),
])
def test_bad_backend_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    assert main([*SWEEP, "--out-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "lr").exists()


def test_the_driver_writes_only_inside_the_run_directory_and_mirrors_the_node(tmp_path):
    for bad in ("../escape", "/etc/passwd", "a/../../b", ".lock", "checkpoints/.x.tmp-1", ""):
        with pytest.raises(ValueError, match="not a path inside its run directory"):
            checked_path(tmp_path, bad)
    run = tmp_path / "run"
    (run / "checkpoints" / "step_000000100").mkdir(parents=True)
    (run / "checkpoints" / "step_000000100" / "model.safetensors").write_bytes(b"old")
    (run / "error.txt").write_text("an earlier attempt's")
    (run / ".lock").write_text("")
    sent = {"config.json": b"{}", "eval.json": b'{"mean": 1.0}', "checkpoint/model.safetensors": b"final",
            "checkpoints/step_000000200/model.safetensors": b"new", "checkpoints/latest": b"step_000000200\n"}
    write_final(run, sent)
    assert read_tree(run) == sent  # the stale checkpoint and error.txt went; hidden files are not records
    assert (run / ".lock").exists() and not (run / "checkpoints" / "step_000000100").exists()


TUNE = ["tune", "ppo", "--env", "CartPole-v1", "--trials", "3", "--seeds-per-trial", "2", "--total-steps", "1024",
        "--eval-every", "256", "--eval-episodes", "2", "--top", "1", "--reeval-seeds", "1", "--workers", "2",
        "--name", "t"]


def trial_rows(study: Path) -> list[dict]:
    """trials.csv without its clock columns: what the tuning found, not how long it took."""
    with open(study / "trials.csv", newline="") as f:
        return [{k: v for k, v in row.items() if "second" not in k and "time" not in k} for row in csv.DictReader(f)]


@needs_ray
def test_a_tuning_on_the_cluster_finds_what_the_local_tuning_finds(cluster, tmp_path):
    assert main([*TUNE, "--out-dir", str(tmp_path / "local")]) == 0
    assert main([*TUNE, "--out-dir", str(tmp_path / "ray"), "--backend", "ray", "--address", cluster.address]) == 0
    local, on_ray = trial_rows(tmp_path / "local" / "t"), trial_rows(tmp_path / "ray" / "t")
    assert len(local) == 3 and on_ray == local
    assert (tmp_path / "ray" / "t" / "best_preset.yaml").read_text() == \
        (tmp_path / "local" / "t" / "best_preset.yaml").read_text()
