"""Write-then-rename helpers so an interrupted run never leaves a file or folder that looks complete.

A failure to write an output (disk full, read-only or special file system, a path under a regular file) becomes one
OutputError naming the output and the reason; the temporary file or folder is removed either way.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError, RealsimError

# errno values that mean "this output cannot be written there" (the environment, not a bug) when they concern an output
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR})
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})  # environmental wherever they happen


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def os_reason(e: OSError) -> str:
    """A short reason for an OSError met while writing an output ("disk full", "not writable (...)")."""
    n = e.errno
    if n == errno.ENOSPC:
        return "disk full (no space left on device)"
    if n == errno.EDQUOT:
        return "disk quota exceeded"
    if n == errno.EROFS:
        return "not writable (read-only file system)"
    if n in (errno.EACCES, errno.EPERM):
        return f"not writable ({e.strerror or 'permission denied'})"
    if n == errno.ENOTDIR:
        return "not writable (part of the path is a file, not a folder)"
    if n == errno.ENOENT:
        return f"not writable (the file system does not allow creating it there: {e.strerror or 'no such file or directory'})"
    return e.strerror or type(e).__name__


def belongs_to(name: object, output: str | os.PathLike) -> bool:
    """Whether the file `name` is `output`, inside it, or one of its temporaries (`.NAME.*` beside it), or inside those."""
    try:
        p = Path(os.fsdecode(name)).absolute()  # type: ignore[arg-type]
    except TypeError:  # None or a file descriptor
        return False
    out = Path(output).absolute()
    return any(q == out or (q.parent == out.parent and q.name.startswith(f".{out.name}.")) for q in (p, *p.parents))


def as_output_error(e: BaseException, output: str | os.PathLike) -> OutputError | None:
    """The OutputError for `e` when it is a failure to write `output` (or any file of it); None for anything else.

    Disk-full errors count even without a file name (a write() only has a descriptor), or name the file they hit.
    """
    if isinstance(e, OutputError):
        return OutputError(output, e.reason, e.action) if belongs_to(e.path, output) else None
    if not isinstance(e, OSError) or e.errno not in OUTPUT_ERRNOS:
        return None
    if belongs_to(e.filename, output) or (e.filename is None and e.errno in SPACE_ERRNOS):
        return OutputError(output, os_reason(e))
    if e.errno in SPACE_ERRNOS and isinstance(e.filename, (str, bytes)):
        return OutputError(os.fsdecode(e.filename), os_reason(e))
    return None


@contextlib.contextmanager
def output_errors(output: str | os.PathLike) -> Iterator[None]:
    """Inside the block, a failure to write `output` (or its temporaries) is raised as one OutputError naming `output`."""
    try:
        yield
    except (OSError, OutputError) as e:
        oe = as_output_error(e, output)
        if oe is None or (isinstance(e, OutputError) and oe.path == e.path):
            raise
        raise oe from e


def check_writable(path: str | os.PathLike) -> None:
    """OutputError now (before any long work) when `path`, a file or folder still to be written, could not be.

    Probes the nearest existing folder above `path` with a temporary file; creates no folder and leaves nothing behind.
    """
    path = Path(path)
    anc = path.absolute().parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(path, os_reason(OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))), "create")
    try:
        fd, probe = tempfile.mkstemp(prefix=".realsim-probe.", dir=anc)
    except OSError as e:
        raise OutputError(path, os_reason(e), "create") from e
    os.close(fd)
    os.unlink(probe)


def make_dirs(path: str | os.PathLike) -> Path:
    """mkdir -p for an output folder; OutputError (path and reason) when it cannot be made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RealsimError(f"output {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(path, os_reason(e), "create output folder") from e
    return path


def _check_writable_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        check_writable(path)  # names `path` and why: a file in the way, a file system that makes no folders there
        make_dirs(parent)
    if not os.access(parent, os.W_OK):
        raise OutputError(path, f"not writable (no write permission on {parent})")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path beside `path`; it is renamed onto `path` only if the block succeeds."""
    path = Path(path)
    _check_writable_parent(path)
    with output_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
            os.replace(tmp_path, path)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def check_output_dir(path: str | os.PathLike, overwrite: bool = False) -> None:
    """RealsimError when `path`, an output folder still to be written, is a file, or a non-empty folder without
    `overwrite` (atomic_dir checks it; a command calls it itself to fail before long work)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RealsimError(f"output {path} exists and is not a folder")
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise RealsimError(f"output folder {path} is not empty (pass --overwrite to replace it)")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path`, on failure it is removed.

    An existing non-empty `path` is refused unless `overwrite` is set, so a finished result is never clobbered by accident.
    """
    path = Path(path)
    check_output_dir(path, overwrite)
    _check_writable_parent(path)
    with output_errors(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
