"""The one atomic writer of the suite: ``atomic_path`` for a file or a whole folder.

Videos, wavs, caches, splits, run state, evaluation outputs, tables, figures, benchmark JSON and the
train-once folders are all written under a temporary sibling name and renamed on success, so a crash
or a kill never leaves half a file (or half a folder) behind a valid name.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

__all__ = ["atomic_path", "sweep_partials", "write_text"]

PARTIAL = "partial"  # a temporary folder is ``.<name>.partial-<pid>``: a later writer can tell a dead one


def _partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{PARTIAL}-{os.getpid()}")


def sweep_partials(path: str | os.PathLike, only_dead: bool = True) -> None:
    """Remove the temporary folders ``.<name>.partial-<pid>`` that killed writers of ``path`` left.

    With ``only_dead`` a folder is kept while its process lives (another writer at work); without it
    every one goes (for a caller that holds a lock on ``path``, so no other writer can be at work).
    """
    path = Path(path)
    for p in path.parent.glob(f".{path.name}.{PARTIAL}-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if only_dead and pid.isdigit():
            try:
                os.kill(int(pid), 0)
                continue  # alive
            except ProcessLookupError:
                pass
            except PermissionError:  # alive, another user's
                continue
        shutil.rmtree(p, ignore_errors=True)


class atomic_path:
    """Context manager yielding a temporary sibling of ``path``, renamed to ``path`` on success.

    A file (the default): the suffix is kept so FFmpeg picks the right muxer from the extension. The
    temporary file gets the mode a plain ``open(path, "w")`` would give the result: 0o666 less the umask
    for a new file, the old file's mode when one is replaced (``tempfile.mkstemp`` would make every output
    0o600, unreadable to the group that shares the results).

    ``folder=True``: an empty folder ``.<name>.partial-<pid>`` (made by ``mkdir``, so 0o777 less the
    umask) whose filled contents replace ``path`` as a whole. An existing ``path`` is moved aside first
    and restored if the rename fails; with ``replace=False`` an existing ``path`` (another process
    finished first) is kept and ours discarded. On an exception (Ctrl-C included) the temporary goes.
    """

    def __init__(self, path: str | os.PathLike, folder: bool = False, replace: bool = True):
        self.path = Path(path)
        self.folder = folder
        self.replace = replace

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.folder:
            self.tmp = _partial_name(self.path)
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp.mkdir()
            return self.tmp
        try:
            keep = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            keep = None
        while True:
            tmp = self.path.parent / f".{self.path.stem}.{secrets.token_hex(6)}{self.path.suffix}"
            try:  # the kernel applies the umask to 0o666, exactly as for open()
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            break
        try:
            if keep is not None:
                os.fchmod(fd, keep)
        finally:
            os.close(fd)
        self.tmp = tmp
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            if self.folder:
                shutil.rmtree(self.tmp, ignore_errors=True)
            else:
                self.tmp.unlink(missing_ok=True)
            return False
        if not self.folder:
            os.replace(self.tmp, self.path)
            return False
        try:
            self._swap_in()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def _swap_in(self) -> None:
        if not self.replace:
            try:
                os.replace(self.tmp, self.path)
            except OSError:
                if not self.path.exists():
                    raise
            return  # else another writer finished first: its copy stays
        old = None
        if self.path.exists():
            # a non-empty folder cannot be renamed onto: move it aside, restore it if the rename fails
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(self.path, old)
        try:
            os.replace(self.tmp, self.path)
        except BaseException:
            if old is not None:
                os.replace(old, self.path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (``atomic_path``); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
