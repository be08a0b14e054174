"""Atomic writes give files the mode a plain ``open()`` would: 0o666 less the umask for a new file, the
old mode for a replaced one (issue 19, item 8: tables and sampled mp4s came out 0o600)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def umask():
    """Run the test under a chosen umask, restored afterwards."""
    old = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def plain_open_mode(path) -> int:
    """What ``open(path, "w")`` gives under the current umask: the reference every writer must match."""
    with open(path, "w") as f:
        f.write("x")
    m = mode(path)
    os.remove(path)
    return m


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077], ids=["umask022", "umask002", "umask077"])
def test_atomic_path_honours_the_umask(tmp_path, umask, mask):
    from core.atomic import atomic_path

    umask(mask)
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("hello")
    assert mode(tmp_path / "a.txt") == plain_open_mode(tmp_path / "ref.txt") == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left behind


def test_atomic_path_keeps_the_mode_of_the_file_it_replaces(tmp_path, umask):
    from core.atomic import atomic_path

    target = tmp_path / "table.tex"
    target.write_text("old")
    os.chmod(target, 0o640)  # a plain open("w") of an existing file keeps its mode
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and mode(target) == 0o640


def test_failed_write_leaves_nothing(tmp_path, umask):
    from core.atomic import atomic_path

    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_written_video_is_group_readable(tmp_path, umask):
    from core.video_io import write_video

    path = write_video(tmp_path / "sample.mp4", np.zeros((2, 16, 16, 3), np.uint8), 25.0)
    assert mode(path) == 0o644


def test_evaluation_outputs_honour_the_umask(tmp_path, umask):
    from metrics.evaluate import EvalResult, write_result

    umask(0o002)
    result = EvalResult(pd.DataFrame({"video": ["a"], "status": ["ok"]}), {"n_videos": 1})
    csv, js = write_result(result, tmp_path)
    assert mode(csv) == mode(js) == 0o664


def test_mcdm_memory_benchmark_json_honours_the_umask(tmp_path, umask):
    from omegaconf import OmegaConf

    from experiments.benchmarks.mcdm_memory import measure

    assert measure(OmegaConf.create({}), [], steps=1, image_size=32, out=str(tmp_path / "mem.json")) == []
    assert mode(tmp_path / "mem.json") == 0o644


def test_report_files_honour_the_umask(tmp_path, umask):
    from core.atomic import write_text
    from reports.plots import plot_table
    from reports.tables import Cell, Table

    t = Table(name="t", caption="c", metrics=["SSIM"], ours={"a": {"SSIM": Cell(0.5, 0.4, 0.6)}})
    paths = [write_text(tmp_path / "t.tex", "x"), plot_table(t, tmp_path / "t.png")]
    assert [mode(p) for p in paths] == [0o644, 0o644]


def test_atomic_folder_replaces_the_whole_folder_or_leaves_it(tmp_path, umask):
    """atomic_path(folder=True): the train-once folders, the SynthTalk build and a shards export are filled
    in a hidden partial folder and renamed into place as a whole."""
    from core.atomic import atomic_path

    umask(0o022)
    target = tmp_path / "cache" / "entry"
    with atomic_path(target, folder=True) as tmp:
        assert tmp.is_dir() and tmp.name.startswith(".entry.partial-") and not target.exists()
        (tmp / "a.txt").write_text("one")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and mode(target) == 0o755
    with pytest.raises(RuntimeError), atomic_path(target, folder=True) as tmp:
        (tmp / "b.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # the old folder is untouched
    with atomic_path(target, folder=True) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced as a whole
    with atomic_path(target, folder=True, replace=False) as tmp:  # another writer finished first
        (tmp / "c.txt").write_text("three")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in target.parent.iterdir()] == ["entry"]  # no partial or old folder left


def test_a_dead_writers_partial_folder_is_swept(tmp_path):
    import os

    from core.atomic import sweep_partials

    target = tmp_path / "export"
    dead, alive = tmp_path / ".export.partial-999999999", tmp_path / f".export.partial-{os.getppid()}"
    dead.mkdir(), alive.mkdir()
    sweep_partials(target)
    assert not dead.exists() and alive.exists()  # a live writer keeps its folder
    sweep_partials(target, only_dead=False)  # under the caller's lock: every leftover goes
    assert not alive.exists()
