"""experiments/variant_run.py: one object owns a variant's MLflow run and its run-state entry (start or
reopen, finish, fail), so the runner has no 'if tracker' / 'if state' branches; on a DDP rank without a
tracker or state every call is a no-op."""

from __future__ import annotations

import pytest

from experiments.variant_run import VariantRun


class FakeTracker:
    def __init__(self):
        self.calls = []

    def start(self, name, tags, parent):
        self.calls.append(("start", name, parent))
        return "new-id"

    def reopen(self, run_id):
        self.calls.append(("reopen", run_id))
        return run_id

    def finish(self, run_id):
        self.calls.append(("finish", run_id))

    def fail(self, run_id, error):
        self.calls.append(("fail", run_id, str(error)))

    def log_config(self, run_id, cfg):
        self.calls.append(("config", run_id))


class FakeState:
    def __init__(self, entries=None):
        self.entries = entries or {}

    def variant(self, name):
        return self.entries.setdefault(name, {})

    def update_variant(self, name, **fields):
        self.variant(name).update(fields)


def test_a_variant_run_is_finished_when_its_block_ends():
    tracker, state = FakeTracker(), FakeState()
    run = VariantRun("v", tracker, state, "parent")
    with run.active({"suite.kind": "variant"}):
        assert state.entries["v"] == {"run_id": "new-id", "status": "running"}
        run.log_config({})
    assert tracker.calls == [("start", "v", "parent"), ("config", "new-id"), ("finish", "new-id")]
    assert state.entries["v"]["status"] == "finished"


def test_a_failing_variant_is_marked_failed_with_its_error_and_the_error_goes_on():
    tracker, state = FakeTracker(), FakeState()
    with pytest.raises(ValueError, match="boom"), VariantRun("v", tracker, state, "p").active({}):
        raise ValueError("boom")
    assert tracker.calls[-1] == ("fail", "new-id", "boom") and state.entries["v"]["status"] == "failed"


def test_an_interrupted_variant_reopens_its_run_and_keeps_its_first_params():
    tracker, state = FakeTracker(), FakeState({"v": {"run_id": "old-id", "status": "running"}})
    run = VariantRun("v", tracker, state, "p")
    assert not run.finished
    with run.active({}):
        run.log_config({})  # a reopened run keeps the params it logged first
    assert tracker.calls == [("reopen", "old-id"), ("finish", "old-id")]
    assert VariantRun("v", tracker, state).finished


def test_without_tracker_or_state_every_call_is_a_no_op(tmp_path):
    run = VariantRun("v")
    with run.active({}):
        run.log_config({})
        run.tag("k", "v")
        run.checkpoint(tmp_path / "last.ckpt")
        run.log_summary({"SSIM": {}})
        run.log_artifacts([tmp_path], "x")
    assert run.run_id is None and not run.finished
