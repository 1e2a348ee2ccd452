"""Mirrored (two logical CPU devices) and multi-worker (two processes on 127.0.0.1)
training agree with single-device training on the same data."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

JOB = Path(__file__).with_name("distributed_job.py")
ROOT = JOB.parent.parent

pytestmark = pytest.mark.slow


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _start(tmp_path, name, *args, env=None):
    out = tmp_path / f"{name}.npz"
    cmd = [sys.executable, str(JOB), "--run-dir", str(tmp_path / name), "--out", str(out), *args]
    return subprocess.Popen(cmd, env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out


def _finish(process, timeout=600):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


def _run(tmp_path, name, *args):
    process, out = _start(tmp_path, name, *args)
    _finish(process)
    return dict(np.load(out))


def _assert_same_training(single, distributed, replicas, rtol=1e-3, atol=1e-4):
    # synchronised BatchNorm computes the variance as E[x^2] - E[x]^2, one device in two
    # passes: they differ by about 1e-4 relative; a wrong gradient or statistic is ~1e-1 off
    assert int(distributed.pop("replicas")) == replicas
    assert int(single.pop("replicas")) == 1
    assert single.keys() == distributed.keys()
    for name in single:
        np.testing.assert_allclose(distributed[name], single[name], rtol=rtol, atol=atol, err_msg=name)


def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path):
    single = _run(tmp_path, "single")
    mirrored = _run(tmp_path, "mirrored", "--strategy", "mirrored", "--logical-cpus", "2")
    _assert_same_training(single, mirrored, replicas=2)


def test_mirrored_rebnn_gamma_uses_the_whole_batch(tmp_path):
    """ReBNN's adaptive gamma takes max |dL/dw_hat| over the global batch: each replica's
    share alone gives about half of it (measured: 39 % off; all-reduced: 0.2 %, the odd
    sign flip). Two steps only: latent weights near zero flip differently after a while."""
    args = ("--weights", "learned", "--examples", "32", "--epochs", "1")
    single = _run(tmp_path, "single", *args)
    mirrored = _run(tmp_path, "mirrored", "--strategy", "mirrored", "--logical-cpus", "2", *args)
    gamma = "b1_bconv/gamma:0"
    assert single[gamma].min() > 0  # some signs flipped, so gamma is informative
    np.testing.assert_allclose(mirrored[gamma], single[gamma], rtol=2e-2)
    _assert_same_training(single, mirrored, replicas=2, rtol=1e-2, atol=1e-3)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_match_one_device(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(_start(tmp_path, f"worker{index}", "--strategy", "multi-worker", env=_env(TF_CONFIG=config)))
    single = _run(tmp_path, "single")
    for process, _ in workers:
        _finish(process)
    chief_out, other_out = workers[0][1], workers[1][1]
    assert not other_out.exists() and not (tmp_path / "worker1").exists()  # only the chief writes
    assert (tmp_path / "worker0" / "model.h5").exists()
    _assert_same_training(single, dict(np.load(chief_out)), replicas=2)
