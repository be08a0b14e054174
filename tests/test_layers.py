"""The layers of docs/CONTRACTS.md, checked by import-linter with the contracts of setup.cfg.

reports -> experiments -> {lightning_modules, datamodules} -> metrics -> core; core imports none of the
five; no cycles between the modules of a package. Every import counts, also one inside a function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "datamodules", "lightning_modules", "metrics", "experiments", "reports")
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint(root: Path) -> tuple[int, str, list[str]]:
    """Run import-linter on the packages under ``root``: exit status, output, names of broken contracts."""
    # a wide console: rich would wrap a long contract name over two lines
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "COLUMNS": "250"}
    r = subprocess.run([sys.executable, "-c", LINT, "--config", str(root / "setup.cfg"), "--no-cache"],
                       cwd=root, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    broken = [m.group(1).strip() for m in re.finditer(r"^(.+?) BROKEN$", out, flags=re.M)]
    return r.returncode, out, broken


def test_the_code_keeps_every_layer_contract():
    code, out, broken = lint(REPO)
    assert code == 0, f"import-linter: broken contract(s) {broken} (setup.cfg [importlinter]):\n{out[-4000:]}"
    assert out.count(" KEPT") == 3  # layers, core's isolation, no cycles: all three ran


def _copy(tmp: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp / pkg,
                        ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.csv"))
    shutil.copy(REPO / "setup.cfg", tmp / "setup.cfg")
    return tmp


def test_an_upward_import_breaks_the_layers_contract_by_name(tmp_path):
    """The check can fail: metrics importing experiments (an upward import, as metrics.evaluate once
    imported experiments.tracking) is reported with the contract's name."""
    root = _copy(tmp_path)
    with open(root / "metrics" / "bootstrap.py", "a") as f:
        f.write("\n\ndef _upward():\n    from experiments import variants  # noqa: F401\n")
    code, out, broken = lint(root)
    assert code != 0
    assert any(b.startswith("layers: reports -> experiments") for b in broken), out[-3000:]
    assert "metrics.bootstrap -> experiments.variants" in out


def test_core_importing_a_package_and_a_cycle_are_reported(tmp_path):
    root = _copy(tmp_path)
    with open(root / "core" / "atomic.py", "a") as f:
        f.write("\n\ndef _up():\n    import datamodules.splits  # noqa: F401\n")
    with open(root / "reports" / "tracked.py", "a") as f:  # reports.build imports reports.tracked
        f.write("\n\ndef _back():\n    import reports.build  # noqa: F401\n")
    code, _, broken = lint(root)
    assert code != 0
    assert "core imports none of the five packages" in broken
    assert "no cycles between the modules of a package" in broken


def test_the_layer_picture_in_contracts_is_drawn_from_the_code():
    """docs/CONTRACTS.md's picture is `python docs/layer_graph.py`'s output for today's imports."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("layer_graph", REPO / "docs" / "layer_graph.py")
    layer_graph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(layer_graph)
    text = layer_graph.CONTRACTS.read_text()
    assert layer_graph.render(text) == text, "the layer picture is stale: run `python docs/layer_graph.py`"
    stale = text.replace("metrics -->|", "metrics -.->|")
    assert layer_graph.render(stale) == text != stale  # a hand-edited picture is redrawn
    assert "core -->" not in text and "metrics --> lightning_modules" not in text  # nothing points upward
