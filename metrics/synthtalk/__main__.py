"""Train (or reuse) the SynthTalk evaluators of a built SynthTalk folder and print their skill.

    python -m metrics.synthtalk SYNTHTALK_FOLDER [--set face.steps=800 sync.width=0.125 ...]

Prints the evaluator folder (give it to ``python -m metrics.evaluate ... --lab``) and the headline
skill figures of its ``skill.json``.
"""

from __future__ import annotations

import argparse
import json

from metrics.synthtalk.cache import ensure_evaluators
from metrics.synthtalk.lab import Lab
from metrics.synthtalk.skill import flatten


def _overrides(items) -> dict:
    cfg: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE (e.g. face.steps=800), got {item!r}")
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = json.loads(value)
    return cfg


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m metrics.synthtalk", description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a built SynthTalk folder (the one holding params.json)")
    ap.add_argument("--set", nargs="*", default=None, help="evaluator config overrides, e.g. face.steps=800")
    args = ap.parse_args(argv)
    folder = ensure_evaluators(args.folder, _overrides(args.set))
    print(folder)
    for name, value in flatten(Lab(folder).skill()).items():
        print(f"{name:>40}: {value:.4f}")


if __name__ == "__main__":
    main()
