"""Every command line of the suite: ``--help`` prints usage and exits 0; a user error is one line naming the
file or key and what to do, exit status 2; ``--debug`` shows the traceback (issue 19, items 5 and 6)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.cli import run_cli
from tests.conftest import REPO

# the Hydra commands and the one hand-parsed command answer --help before torch loads: run as a user would
SUBPROCESS_HELP = {"experiments.run": "python -m experiments.run",
                   "experiments.bench": "python -m experiments.bench",
                   "experiments.sample": "python -m experiments.sample",
                   "datamodules.preprocess": "data=<name>"}
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}


def _python(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**ENV, "HOME": str(cwd)})


def _one_line(text: str, *needles: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("\r")]
    assert len(lines) == 1 and "Traceback" not in text, text
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_help_of_the_hydra_and_preprocess_commands(tmp_path):
    procs = {m: subprocess.Popen([sys.executable, "-m", m, "--help"], cwd=tmp_path, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env={**ENV, "HOME": str(tmp_path)})
             for m in SUBPROCESS_HELP}
    for module, usage in SUBPROCESS_HELP.items():
        out, err = procs[module].communicate(timeout=300)
        assert procs[module].returncode == 0, (module, err)
        assert usage in out, (module, out[:500])
    assert not list(tmp_path.iterdir())  # --help writes nothing


@pytest.mark.parametrize("module", ["metrics.evaluate", "reports.build", "datamodules.shards"])
def test_help_of_the_argparse_commands(module, capsys):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as info:
        run_cli(main, module, ["--help"])
    assert info.value.code == 0 and "usage:" in capsys.readouterr().out


def _fails(main, prog, argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        run_cli(main, prog, argv)
    assert info.value.code == 2
    return _one_line(capsys.readouterr().err)


def test_evaluate_user_errors_are_one_line(tmp_path, capsys):
    from metrics.evaluate import main

    (tmp_path / "pred").mkdir()
    line = _fails(main, "metrics.evaluate", ["--pred", str(tmp_path / "nowhere")], capsys)
    assert "nowhere" in line and "does not exist" in line and "--pred" in line
    line = _fails(main, "metrics.evaluate", ["--pred", str(tmp_path / "pred"), "--metrics", "Foo"], capsys)
    assert "'Foo'" in line and "unknown metric" in line
    line = _fails(main, "metrics.evaluate", ["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "pred"),
                                             "--metrics", "FID", "--no-standin"], capsys)
    assert "weights.fid_inception" in line and "SUITE_FID_INCEPTION" in line  # MissingWeightsError
    with pytest.raises(FileNotFoundError):  # --debug: the exception itself, with its traceback
        run_cli(main, "metrics.evaluate", ["--pred", str(tmp_path / "nowhere"), "--debug"])


def test_evaluate_from_the_shell_exits_2_on_a_bad_metric(tmp_path):
    (tmp_path / "pred").mkdir()
    r = _python("-m", "metrics.evaluate", "--pred", str(tmp_path / "pred"), "--metrics", "Foo", cwd=tmp_path)
    assert r.returncode == 2
    _one_line(r.stderr, "metrics.evaluate: error:", "unknown metric name", "'Foo'")


def test_preprocess_user_errors_are_one_line(tmp_path, capsys):
    from datamodules.preprocess.__main__ import main

    line = _fails(main, "datamodules.preprocess", [], capsys)
    assert "give data=<name>" in line and "folder" in line
    line = _fails(main, "datamodules.preprocess", ["data=nosuch"], capsys)
    assert "data=nosuch" in line and "choose one of" in line
    line = _fails(main, "datamodules.preprocess", ["data=folder", f"data.root={tmp_path / 'gone'}",
                                                   f"out_dir={tmp_path / 'out'}"], capsys)
    assert f"data.root={tmp_path / 'gone'}" in line and "Expected layout" in line


def test_reports_without_a_store_is_one_line(tmp_path, capsys):
    from reports.build import main

    line = _fails(main, "reports.build", ["--tracking-uri", f"sqlite:///{tmp_path}/none.db",
                                          "--out", str(tmp_path / "out")], capsys)
    assert f"{tmp_path}/none.db" in line and "experiments.run" in line and "--tracking-uri" in line
    assert not (tmp_path / "none.db").exists()  # no empty store left behind


def test_sample_without_a_checkpoint_is_one_line_and_logs_outside_the_working_folder(tmp_path):
    r = _python("-m", "experiments.sample", f"ckpt={tmp_path / 'none.ckpt'}", "reference=me.png",
                "audio=a.wav", cwd=tmp_path)
    assert r.returncode == 2
    _one_line(r.stderr, "experiments.sample: error:", "none.ckpt", "not found", "ckpt=PATH")
    # issue 19, item 9: the log goes under the run folder, not into the folder the command ran in
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]
    assert [p.name for p in (tmp_path / "runs" / "sample").glob("*/sample.log")] == ["sample.log"]
