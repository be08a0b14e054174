"""What every command-line entry point of the suite shares: user errors as one line, exit status 2.

A user error is an ``OSError`` (a missing folder or file, a full disk) or a ``ValueError`` (a bad value,
a bad file; the suite's own errors derive from one of them, ``MissingWeightsError`` included) or a
``TrackingUnavailable``. Its message already names the file or config key and what to do, so
the command prints ``error: <message>`` on one line and exits with status 2, the status argparse
gives a bad option. ``--debug`` (or ``HYDRA_FULL_ERROR=1``) lets the exception through with its
traceback. Any other exception is a bug and always keeps its traceback.

    python -m metrics.evaluate --pred missing/ --debug     # the traceback of the same error
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence

USAGE_EXIT = 2
DEBUG_FLAG = "--debug"
_state = {"entered": False}  # whether a Hydra task function started (else Hydra refused the config)


class ConfigError(ValueError):
    """A config value or key a command cannot use; the message names the key and what to do."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    # a TrackingUnavailable can only come from an imported tracking module: looking it up instead of
    # importing it keeps MLflow off the path of a config error
    tracking = sys.modules.get("core.tracking")
    return (OSError, ValueError) + ((tracking.TrackingUnavailable,) if tracking else ())


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a layout listed over several lines is joined with '; ')."""
    text = str(error) or type(error).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return "; ".join(lines).replace(":;", ":")


def debugging(argv: Sequence[str] | None = None) -> bool:
    return DEBUG_FLAG in (sys.argv[1:] if argv is None else argv) or os.environ.get("HYDRA_FULL_ERROR") == "1"


def strip_debug(argv: list[str]) -> list[str]:
    return [a for a in argv if a != DEBUG_FLAG]


def fail(error: BaseException, prog: str) -> None:
    """Print the one-line form of ``error`` and exit 2."""
    print(f"{prog}: error: {one_line(error)} (add {DEBUG_FLAG} for the traceback)", file=sys.stderr)
    raise SystemExit(USAGE_EXIT)


def run_cli(main: Callable[[list[str]], object], prog: str, argv: Sequence[str] | None = None) -> object:
    """Call an argparse entry point ``main(argv)``, turning a user error into one line and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(args)
    try:
        return main(strip_debug(args))
    except _user_error_types() as e:
        if debug:
            raise
        fail(e, prog)


@contextlib.contextmanager
def user_errors(prog: str, log: logging.Logger | None = None) -> Iterator[None]:
    """Inside a Hydra task function: a user error becomes one line (logged, so it also reaches the run's
    log file) and exit 2; with ``--debug`` / ``HYDRA_FULL_ERROR=1`` it propagates to Hydra's traceback."""
    _state["entered"] = True
    try:
        yield
    except _user_error_types() as e:
        if debugging():
            raise
        if log is not None:  # into the run's log file; the console gets the one line below, once
            record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (one_line(e),), None)
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.handle(record)
        fail(e, prog)


def run_hydra(task: Callable[[], object]) -> None:
    """Call a ``@hydra.main`` function from ``__main__``: ``--debug`` becomes ``HYDRA_FULL_ERROR=1`` (Hydra
    itself refuses unknown flags), and a config Hydra refuses before the task starts (an unknown
    ablation, a misspelled key) exits 2 like every other user error."""
    if DEBUG_FLAG in sys.argv[1:]:
        sys.argv = [sys.argv[0], *strip_debug(sys.argv[1:])]
        os.environ["HYDRA_FULL_ERROR"] = "1"
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")
    try:
        task()
    except SystemExit as e:
        if e.code == 1 and not _state["entered"]:
            raise SystemExit(USAGE_EXIT) from None
        raise
