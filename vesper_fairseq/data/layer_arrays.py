"""Per-layer arrays on disk: the one format of teacher targets (vesper-dump-teacher) and of
extracted features (vesper-extract), HuBERT-style. Shard i of n of a list of rows has the
contiguous rows `shard_rows(num_rows, i, n)` and the prefix OUT/{name}_{i}_{n}::

    {prefix}.{key}.npy    one (sum of frames | rows, D) array per key (layer12, features, ...)
    {prefix}.len          frames per row, one per line
    {prefix}.done.json    written last: the shard is complete (what made it)

While a shard is written, its arrays live in {prefix}.partial/ ({key}.npy memory-mapped at
their final shape, plus progress.json: the next row to write and what makes the shard);
progress is saved only between fixed groups of rows, so a resumed run writes the same bytes.
Final names appear only when the shard is complete."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from ..fingerprint import differences
from ..io_utils import WriteError, atomic_write_text, write_json_atomic

logger = logging.getLogger(__name__)


def shard_rows(num_rows: int, shard: int, num_shards: int) -> tuple[int, int]:
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is not in [0, {num_shards})")
    per = -(-num_rows // num_shards)
    return min(shard * per, num_rows), min((shard + 1) * per, num_rows)


def shard_prefix(root, name: str, shard: int, num_shards: int) -> Path:
    return Path(root) / f"{name}_{shard}_{num_shards}"


def array_path(prefix: Path, key: str) -> Path:
    return Path(f"{prefix}.{key}.npy")


class ShardWriter:
    """The partial arrays of one shard. `made_by` describes what makes the shard: a partial
    shard made otherwise is started over (`restart`) or refused (else), naming the changes."""

    def __init__(self, prefix, shapes: dict, dtype: str, made_by: dict, **options):
        """options: restart (bool), what (how messages name a partial shard), informational
        (keys of `made_by` recorded but not compared: the same weights elsewhere are the same)."""
        self.prefix, self.made_by = Path(prefix), made_by
        self.what = options.get("what", "partial shard")
        self.informational = options.get("informational", ())
        restart = options.get("restart", False)
        self.folder = Path(f"{prefix}.partial")
        self.progress_path = self.folder / "progress.json"
        _restore_moved_arrays(self.prefix, shapes)
        _remove_stale_temporaries(self.prefix, shapes)
        resume = self.progress_path.exists() and self._same_maker(restart)
        if resume:
            self.next_row = json.loads(self.progress_path.read_text())["next_row"]
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            self.next_row = 0
        mode = "r+" if resume else "w+"
        self.arrays = {
            key: _open_memmap(self.folder / f"{key}.npy", mode, dtype, tuple(shape))
            for key, shape in shapes.items()
        }
        if not resume:
            self.save(0)

    def _same_maker(self, restart: bool) -> bool:
        saved = json.loads(self.progress_path.read_text())
        diffs = compare(saved.get("fingerprint") or {}, self.made_by, self.informational)
        if diffs and not restart:
            raise ValueError(
                f"{self.folder} holds a {self.what} with other settings "
                f"({'; '.join(diffs)}): rerun with --overwrite to start over"
            )
        if diffs:
            changes = "; ".join(diffs)
            logger.warning("%s: made with other settings (%s): starting over", self.folder, changes)
        return not diffs

    def save(self, next_row: int) -> None:
        """Flush the arrays, then record that every row before `next_row` is written."""
        for key, array in self.arrays.items():
            try:
                array.flush()
            except OSError as e:  # disk full, ...: the progress so far stays recorded
                raise WriteError(self.folder / f"{key}.npy", e) from e
        write_json_atomic(self.progress_path, {"fingerprint": self.made_by, "next_row": next_row})
        self.next_row = next_row

    def finish(self, lengths, done: dict, extra: dict | None = None) -> Path:
        """Move the arrays to their final names, write {prefix}.len, the `extra` text files
        ({suffix: text}) and, last, {prefix}.done.json holding `done`."""
        for key in list(self.arrays):
            del self.arrays[key]
            os.replace(self.folder / f"{key}.npy", array_path(self.prefix, key))
        atomic_write_text(Path(f"{self.prefix}.len"), "".join(f"{n}\n" for n in lengths))
        for suffix, text in (extra or {}).items():
            atomic_write_text(Path(f"{self.prefix}{suffix}"), text)
        path = Path(f"{self.prefix}.done.json")
        write_json_atomic(path, done)
        shutil.rmtree(self.folder, ignore_errors=True)
        return path


def _open_memmap(path: Path, mode: str, dtype, shape: tuple) -> np.ndarray:
    try:
        return np.lib.format.open_memmap(path, mode=mode, dtype=dtype, shape=shape)
    except OSError as e:  # disk full, ...: say which file
        raise WriteError(path, e) from e


def compare(recorded: dict, current: dict, informational=()) -> list[str]:
    """The differences of `current` from `recorded`, informational keys left out."""
    keys = [k for k in current if k not in informational]
    return differences({k: recorded.get(k) for k in keys}, {k: current[k] for k in keys})


def _restore_moved_arrays(prefix: Path, keys) -> None:
    """A run killed inside finish() has moved some arrays out of the partial folder, and no
    done.json exists: move them back, so the resumed run finishes the same way."""
    folder = Path(f"{prefix}.partial")
    if not (folder / "progress.json").exists() or Path(f"{prefix}.done.json").exists():
        return
    for key in keys:
        final, kept = array_path(prefix, key), folder / f"{key}.npy"
        if final.exists() and not kept.exists():
            os.replace(final, kept)


def _remove_stale_temporaries(prefix: Path, keys) -> None:
    """Arrays half-written by earlier releases ({prefix}.{key}.npy.tmp) are never resumed."""
    for key in keys:
        Path(f"{array_path(prefix, key)}.tmp").unlink(missing_ok=True)


def remove_shard(prefix, keys, suffixes=(), partial: bool = True) -> None:
    """done.json first (nothing looks finished), then the rest of the shard (its partial
    folder too unless `partial` is False)."""
    prefix = Path(prefix)
    Path(f"{prefix}.done.json").unlink(missing_ok=True)
    for path in [Path(f"{prefix}{s}") for s in (".len", *suffixes)]:
        path.unlink(missing_ok=True)
    for key in keys:
        array_path(prefix, key).unlink(missing_ok=True)
    if partial:
        shutil.rmtree(f"{prefix}.partial", ignore_errors=True)


def recorded_maker(prefix) -> dict | None:
    """What made the shard at `prefix`, as recorded: its done.json, else its partial progress."""
    done, progress = Path(f"{prefix}.done.json"), Path(f"{prefix}.partial") / "progress.json"
    if done.exists():
        return read_json(done)
    if progress.exists():
        return read_json(progress).get("fingerprint")
    return None


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file: {e}") from None


def read_lengths(prefix) -> np.ndarray:
    """Frames per row of {prefix}.len (a shard of no rows has an empty file)."""
    text = Path(f"{prefix}.len").read_text().split()
    return np.array([int(n) for n in text], dtype=np.int64)


def open_array(prefix, key: str, dtype, shape: tuple) -> np.ndarray:
    """{prefix}.{key}.npy memory-mapped, refused unless it has `dtype` and `shape`."""
    path = array_path(Path(prefix), key)
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npy array: {e}") from None
    if array.dtype != np.dtype(dtype) or array.shape != tuple(shape):
        raise ValueError(
            f"{path}: {array.dtype} array of shape {array.shape}, the store needs "
            f"{np.dtype(dtype)} {tuple(shape)}"
        )
    return array
