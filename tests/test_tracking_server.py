"""Logging against a real `mlflow server` on a loopback port, and a clear error when it is down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from core.tracking import Tracker, TrackingUnavailable, check_reachable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root}/db.sqlite", "--default-artifact-root", str(root / "art"),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start within 120 s")
    yield uri
    proc.terminate()
    proc.wait(timeout=20)


def test_parent_child_runs_and_summary_on_a_real_server(mlflow_server):
    t = Tracker(mlflow_server, "server-test")
    with t.run("parent", {"suite.kind": "parent", "suite.experiment": "e"}) as pid:
        with t.run("child", {"suite.kind": "variant", "suite.variant": "full"}, parent_id=pid) as cid:
            t.log_params(cid, {"model.tsm.stride": "4", "model.tsm.expand_ratio": "2"})
            t.log_summary(cid, {"Sync-C": {"mean": 5.0, "ci_low": 4.5, "ci_high": 5.5, "n": 10,
                                           "backbone": "standin:syncnet-random:seed0"}})
    run = t.client.get_run(cid)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.parentRunId"] == pid
    assert run.data.params["model.tsm.stride"] == "4"
    assert run.data.metrics["test/Sync-C"] == 5.0 and run.data.metrics["test/Sync-C.ci_high"] == 5.5
    assert run.data.tags["backbone.Sync-C"].startswith("standin")


def test_unreachable_server_fails_fast_naming_the_uri():
    uri = f"http://127.0.0.1:{_free_port()}"
    t0 = time.time()
    with pytest.raises(TrackingUnavailable) as e:
        check_reachable(uri, timeout_s=2)
    assert uri in str(e.value) and "Nothing was trained" in str(e.value)
    assert time.time() - t0 < 10
