"""The one way policygrad writes a file or a folder that must survive a crash.

Every write goes through a hidden temporary beside its final place (``.NAME.tmp-PID``), is fsynced,
then renamed over the final name, and the parent folder is fsynced so that the rename itself is
durable. A reader therefore sees the old content or the new one, never a mix, whatever kills the
writer and whenever.

A folder is published the same way: written complete under ``.NAME.tmp-PID``, then swapped in. The
swap takes two renames (the old folder aside to ``.NAME.old-PID``, the new one in); if the second
fails the old folder is put back, and if the process dies between the two, :func:`clean_leftovers`
puts it back on the next start. What a failed write leaves is removed, and the error is a
:class:`~policygrad.core.errors.RunWriteError` that names the path and says why (a full disk, a
read-only folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policygrad.core.errors import RunWriteError

LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|trash)-\d+$")


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename is durable only once its directory is); a no-op where the
    platform cannot open directories."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def hidden_sibling(path: Path, kind: str) -> Path:
    """``.NAME.KIND-PID`` beside ``path``: the names :func:`clean_leftovers` knows."""
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}")


def holds_visible_files(folder: Path) -> bool:
    """Whether ``folder`` holds anything but hidden bookkeeping: lock files and the temporaries of
    :func:`atomic_write` (``.NAME.tmp-PID``), which another process may be writing this very moment."""
    return folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir())


def discard(path: Path) -> None:
    """Delete what a failed write left (a file or a folder), if it can be: never raises."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[Path], Any], what: str = "file") -> None:
    """Write ``path`` through ``write(temporary_path)``: the old file stays until the new one is
    complete and on disk. On failure the temporary goes and RunWriteError names ``path``."""
    path = Path(path)
    tmp = hidden_sibling(path, "tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise RunWriteError.from_os_error(what, path, exc) from exc
    fsync_dir(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes, what: str = "file") -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), what)


def write_text_atomic(path: str | Path, text: str, what: str = "file") -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what)


def write_json_atomic(path: str | Path, data: Any, what: str = "file") -> None:
    """JSON with sorted keys and a final newline, so that the same data is the same bytes."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", what)


def publish_folder(staged: Path, folder: Path) -> None:
    """Move the complete folder ``staged`` to ``folder``, replacing any folder already there; if the
    swap fails, the previous folder is put back."""
    fsync_dir(staged)
    if folder.exists():
        old = hidden_sibling(folder, "old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
        try:
            os.replace(staged, folder)
        except OSError:
            os.replace(old, folder)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, folder)
    fsync_dir(folder.parent)


def write_folder(folder: str | Path, fill: Callable[[Path], Any], what: str = "folder") -> Path:
    """Build ``folder`` by ``fill(staging_folder)`` and publish it at once; returns ``folder``.
    ``fill`` writes its files; each is fsynced here before the folder appears."""
    folder = Path(folder)
    staged = hidden_sibling(folder, "tmp")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir()
        fill(staged)
        for path in sorted(staged.rglob("*")):
            if path.is_file():
                fsync_file(path)
            elif path.is_dir():
                fsync_dir(path)
        publish_folder(staged, folder)
    except OSError as exc:
        discard(staged)
        raise RunWriteError.from_os_error(what, folder, exc) from exc
    return folder


def remove_folder(path: Path) -> None:
    """Delete a folder so that no half-deleted copy is ever seen under its name: rename, then delete."""
    trash = hidden_sibling(path, "trash")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def clean_leftovers(*folders: str | Path) -> list[Path]:
    """Undo what interrupted writes left in ``folders``: a folder caught between the two renames of a
    publish (``.NAME.old-PID`` with no ``NAME``) goes back under its name; temporaries and the rest are
    deleted. Returns what was deleted. Only call it while no other process writes there."""
    removed = []
    for where in map(Path, folders):
        if not where.is_dir():
            continue
        for path in sorted(where.iterdir()):
            match = LEFTOVER.match(path.name)
            if match is None:
                continue
            original = where / match["name"]
            if match["kind"] == "old" and not original.exists():
                os.replace(path, original)
                fsync_dir(where)
                continue
            discard(path)
            removed.append(path)
    return removed


# -- lock files that a finished holder removes ---------------------------------------------------------
# A lock file is an flock on RUN_DIR/.lock (or STUDY_DIR/.lock), which the operating system frees when its
# holder dies. A holder that ends normally also removes it (and the .lock.pid beside it), so that a finished
# run or study keeps no lock files. It removes them while it still holds the lock, so a process that opens
# the path afterwards creates a new file; one that opened the old file just before can lock only that
# removed file, which acquire_lock_file notices (the path is gone or is another file) and retries.


def acquire_lock_file(path: Path) -> Any:
    """A held ``filelock.FileLock`` on ``path``, taken without waiting (``filelock.Timeout`` when
    another process holds it); see the comment above for why it may try more than once."""
    from filelock import FileLock

    for _ in range(100):
        lock = FileLock(path)
        lock.acquire(timeout=0)
        try:
            same = _holds_current_file(lock, path)
        except OSError:  # the path is gone: its holder removed it as we locked it
            same = False
        if same:
            return lock
        lock.release()
    raise RuntimeError(f"could not lock {path}: its lock file was replaced 100 times in a row")


def _holds_current_file(lock: Any, path: Path) -> bool:
    """Whether the descriptor ``lock`` holds is the file now at ``path`` (True where filelock does not
    say which descriptor it holds: then only the path's existence was checked)."""
    now = os.stat(path)
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    return fd is None or os.path.samestat(os.fstat(fd), now)


def release_lock_file(lock: Any, path: Path, *companions: Path) -> None:
    """Remove ``companions`` (the ``.lock.pid``) and the lock file ``path``, then release ``lock``."""
    for leftover in (*companions, path):
        with contextlib.suppress(OSError):
            leftover.unlink()
    lock.release()
