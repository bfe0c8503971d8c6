"""``convolab train --processes N``: one command starts N ranks under mpiexec; rank 0 alone writes."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from convolab.cli import _launch, main

needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or _launch.find_mpiexec() is None,
    reason='needs mpi4py and mpiexec: pip install "convolab[distributed]"',
)
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (96, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 96),
        x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 20),
    )
    return path


def _train(data_file, out, *extra, mpiexec=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for var in _launch._MPI_VARS:  # this test process is not a rank
        env.pop(var, None)
    launcher = [mpiexec, "-n", "2"] if mpiexec else []
    cmd = [
        *launcher,
        sys.executable,
        "-m",
        "convolab.cli",
        "train",
        "--model",
        "simple",
        "--dataset",
        "mnist",
        "--epochs",
        "2",
        "--seed",
        "3",
        "--batch-size",
        "8",
        "--data-dir",
        str(data_file),
        "--out",
        str(out),
        *extra,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@needs_mpi
def test_train_on_two_processes_writes_once_and_repeats(tmp_path, data_file):
    runs = []
    for name in ("a", "b"):
        proc = _train(data_file, tmp_path / name, "--processes", "2")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count("Epoch 2/2") == 1 and proc.stdout.count("loading mnist") == 1, proc.stdout
        assert proc.stdout.count("trained in") == 1
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            "history.json",
            "model.convolab",
            "training_curves.png",
        ]
        runs.append(json.loads((tmp_path / name / "history.json").read_text()))
    assert runs[0]["processes"] == 2 and runs[0]["train_samples"] == 96
    assert runs[0]["history"] == runs[1]["history"]
    assert len(runs[0]["history"]["val_acc"]) == 2


@needs_mpi
def test_ranks_that_differ_from_processes_end_with_an_error(tmp_path, data_file):
    proc = _train(data_file, tmp_path / "out", "--processes", "3", mpiexec=_launch.find_mpiexec())
    assert proc.returncode != 0
    assert "--processes 3 expects 3 ranks; mpiexec started 2" in proc.stderr
    assert not (tmp_path / "out" / "history.json").exists()


def test_processes_without_mpiexec_says_how_to_install(capsys, monkeypatch, tmp_path, data_file):
    monkeypatch.setattr(_launch, "find_mpiexec", lambda: None)
    for var in _launch._MPI_VARS:
        monkeypatch.delenv(var, raising=False)
    code = main(
        ["train", "--dataset", "mnist", "--data-dir", str(data_file), "--out", str(tmp_path), "--processes", "2"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "needs mpiexec" in err and 'pip install "convolab[distributed]"' in err
