"""The one way this project writes a file: into a uniquely named temporary file in the same
folder, then os.replace (atomic on POSIX), so that a reader or a killed run never sees half a
file and concurrent writers cannot collide. The file gets the user's umask (0644 under 022),
and a failed write (disk full, ...) leaves the previous file as it was and names the file.
Files that belong together are written into a temporary sibling folder, which then takes the
output folder's place (atomic_folder)."""

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path


class WriteError(OSError):
    """A file that could not be written; its previous version, if any, is unchanged."""

    def __init__(self, path, cause: Exception):
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        super().__init__(getattr(cause, "errno", None), f"{path} could not be written: {reason}")
        self.path = str(path)

    def __str__(self) -> str:
        return self.strerror


def current_umask() -> int:
    """The process's umask, read without changing it where Linux reports it (setting it, the
    only other way, briefly changes it for every thread)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What open() gives a new file: 0666 less the umask."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """What mkdir gives a new folder: 0777 less the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp"):
    """Yields a temporary path next to `path` for the caller to write by name; `path` is
    replaced by it only when the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json_atomic(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_folder(path, suffix: str = ".tmp"):
    """Yields a temporary folder next to `path` (named `.{name}.*{suffix}`) for the caller to
    fill; when the block completes, it takes the place of `path` (an existing folder there is
    removed whole), so a reader or a killed run finds the earlier set of files or the new one,
    never a mix. On an error or interruption `path` is left as it was. A `path` that is a
    symbolic link is replaced where it points; an earlier folder's mode is kept."""
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent))
    try:
        yield tmp
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_dir() else folder_mode()
        os.chmod(tmp, mode)  # mkdtemp creates 0700
        _swap_in(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(path, e) from e
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # after an exchange it holds the earlier folder


def _swap_in(new: Path, path: Path) -> None:
    """`new` takes the place of `path`: in one step where `path` is absent or the system can
    exchange two names (Linux); else the earlier folder is renamed aside first, then removed
    (a kill between the two renames leaves it, whole, as `{new}.old`)."""
    if not os.path.lexists(path) or not _exchange(new, path):
        if os.path.lexists(path):
            os.rename(path, f"{new}.old")
        os.rename(new, path)
        shutil.rmtree(f"{new}.old", ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swaps the names `a` and `b` atomically (renameat2 RENAME_EXCHANGE); False where the C
    library, kernel or file system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


class LockedError(RuntimeError):
    """Another live process holds the lock of an output."""


@contextlib.contextmanager
def exclusive_lock(path, what: str):
    """Hold `path` (a lock file naming this process) while writing `what`. A live holder on this
    machine makes this fail at once, naming it; a lock left by a dead process is taken over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    with _folder_guard(path.parent):  # two processes never take over the same stale lock
        _take(path, what, me)
    try:
        yield
    finally:
        if _lock_holder(path) == me:
            path.unlink(missing_ok=True)


def _take(path: Path, what: str, me: dict) -> None:
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode())
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is None and _age(path) < 10:  # being written this instant
                holder = {"pid": "?", "host": socket.gethostname()}
            if holder is not None and _alive(holder):
                raise LockedError(
                    f"{what} is being written by process {holder.get('pid')} on "
                    f"{holder.get('host')} (lock {path}); wait for it to finish, or remove the "
                    "lock if that process is gone"
                ) from None
            Path(path).unlink(missing_ok=True)  # stale: its process is dead
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me) + "\n")
        return
    raise LockedError(f"{what}: cannot take the lock {path}")


@contextlib.contextmanager
def _folder_guard(folder: Path):
    """An exclusive flock on `folder` itself for the few file operations that take a lock: a
    second process reads the lock only once the first has written it. Where the file system
    has no flock (some network mounts), nothing is held."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def live_locks(folder, pattern: str = "*.lock") -> list[tuple[Path, dict]]:
    """Locks in `folder` held by another live process (this process's own are left out)."""
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    found = []
    for path in sorted(Path(folder).glob(pattern)):
        holder = _lock_holder(path)
        if holder is not None and holder != me and _alive(holder):
            found.append((path, holder))
    return found


def _lock_holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
        return holder if isinstance(holder, dict) else None
    except (OSError, ValueError):
        return None  # unreadable or half-written: treated as stale


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _alive(holder: dict) -> bool:
    if holder.get("pid") == "?":
        return True
    if holder.get("host") != socket.gethostname():
        return True  # another machine: cannot be checked, assume alive
    try:
        os.kill(int(holder["pid"]), 0)
    except (ProcessLookupError, KeyError, TypeError, ValueError):
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def atomic_torch_save(obj, path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
