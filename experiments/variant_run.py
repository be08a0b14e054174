"""The bookkeeping of one variant: its MLflow child run and its entry in the run state (resume).

Global rank 0 tracks and writes the run state; the other DDP ranks run the same code with neither
(``tracker`` and ``state`` None, or a read-only state), so every call here is a no-op there and the
runner's own code has no ``if tracker`` / ``if state`` branches. :meth:`VariantRun.active` starts the run
(or reopens the one an interrupted call left), marks it finished when the block ends, and failed, with
the error, when the block raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from core.tracking import Tracker
    from experiments.resume import RunState


class VariantRun:
    """One variant's MLflow run (``tracker``, under ``parent_id``) and run-state entry (``state``)."""

    def __init__(self, name: str, tracker: Tracker | None = None, state: RunState | None = None,
                 parent_id: str | None = None):
        self.name, self.tracker, self.state, self.parent_id = name, tracker, state, parent_id
        self.entry: dict[str, Any] = state.variant(name) if state else {}
        self.reopened = bool(self.entry.get("run_id"))  # an earlier call of this run started it
        self.run_id: str | None = None

    @property
    def finished(self) -> bool:
        """An earlier call of this run finished the variant (``resume``)."""
        return self.entry.get("status") == "finished"

    def _record(self, **fields) -> None:
        if self.state:
            self.state.update_variant(self.name, **fields)

    def start(self, tags: dict) -> None:
        if self.tracker:
            self.run_id = (self.tracker.reopen(self.entry["run_id"]) if self.reopened
                           else self.tracker.start(self.name, tags, self.parent_id))
        self._record(run_id=self.run_id, status="running")

    def finish(self) -> None:
        if self.tracker:
            self.tracker.finish(self.run_id)
        self._record(status="finished")

    def fail(self, error: BaseException) -> None:
        if self.tracker:
            self.tracker.fail(self.run_id, error)
        self._record(status="failed")

    @contextmanager
    def active(self, tags: dict) -> Iterator[VariantRun]:
        """Start (or reopen) the run; finished at the end of the block, failed if the block raises."""
        self.start(tags)
        try:
            yield self
        except BaseException as e:
            self.fail(e)
            raise
        self.finish()

    # -- what a variant records ------------------------------------------------------------------------
    def log_config(self, cfg: DictConfig) -> None:
        if self.tracker and not self.reopened:  # a reopened run keeps the params it logged first
            self.tracker.log_config(self.run_id, cfg)

    def tag(self, key: str, value: str) -> None:
        if self.tracker:
            self.tracker.client.set_tag(self.run_id, key, value)

    def checkpoint(self, path: Path) -> None:
        """The weights of this variant (``experiments.sample`` loads them; a sharing variant reuses them)."""
        self.tag("suite.checkpoint", str(path.resolve()))
        self._record(checkpoint=str(path.resolve()))

    def log_summary(self, summary: dict) -> None:
        if self.tracker:
            self.tracker.log_summary(self.run_id, summary)

    def log_artifacts(self, paths: Iterable[Path], folder: str) -> None:
        if self.tracker:
            for p in paths:
                self.tracker.log_artifact(self.run_id, p, folder)
