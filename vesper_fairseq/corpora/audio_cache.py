"""One root per manifest: the corpus itself, or a 16 kHz mono cache under DEST.

Sources fairseq can read as they are (soundfile formats, 16 kHz, mono) are used in place. Any
other source is decoded once, averaged to mono, resampled with soxr and written to
``DEST/wav16k/<same relative path>.wav``. When at least one file needed conversion (or the
corpus folder's own path cannot be a manifest's root line), every kept file is served from the
cache (the others as symbolic links, or copies where links are not possible), so each tsv has a
single root. The source corpus is never written to.

A converted file is reused only when its source has the size and SHA-256 recorded in
``DEST/wav16k/sources.json`` when it was written: a source replaced by another one, whatever
its modification time (``tar``, ``rsync -t``), is converted again.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vesper_fairseq.corpora.audio import (
    MIN_SAMPLES,
    AudioSkip,
    check_complete,
    check_signal,
    load_audio,
    load_segment,
    needs_conversion,
    probe_frames,
    to_16k_mono,
    write_wav_atomic,
)
from vesper_fairseq.corpora.manifest import (
    NOT_REPRESENTABLE,
    Row,
    Skipped,
    Utterance,
    manifest_name_problem,
    root_line_problem,
)
from vesper_fairseq.io_utils import WriteError, write_json_atomic

logger = logging.getLogger(__name__)

CACHE_DIRNAME = "wav16k"
INDEX_NAME = "sources.json"
INDEX_FLUSH_S = 30.0  # a killed run keeps the conversions of all but its last seconds


def content_identity(path: Path) -> dict:
    """Size and SHA-256 of a file's bytes: what decides whether a conversion is still valid."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"size": size, "sha256": digest}


@dataclass
class Prepared:
    src: Path
    converted: Path | None  # file written in the cache, None when the source is used in place
    n_samples: int


def cache_problem(corpus_root: Path, cache_root: Path) -> str | None:
    """Why `cache_root` cannot hold the conversions of `corpus_root` (both resolved)."""
    if cache_root == corpus_root or corpus_root in cache_root.parents:
        return (
            f"DEST's cache {cache_root} lies inside the corpus {corpus_root}; "
            "choose a DEST outside the corpus (the corpus is never written to)"
        )
    problem = root_line_problem(str(cache_root))
    return f"DEST's cache folder {str(cache_root)!r} {problem}" if problem else None


class AudioCache:
    """Validates sources and converts what fairseq cannot read as is into the cache."""

    def __init__(self, corpus_root: Path, cache_root: Path, min_samples: int = MIN_SAMPLES):
        self.corpus_root = Path(corpus_root).resolve()
        self.cache_root = Path(cache_root).resolve()
        problem = cache_problem(self.corpus_root, self.cache_root)
        if problem:
            raise ValueError(problem)
        self.min_samples = min_samples
        self._claims: dict[Path, Path] = {}  # cache path -> the source that owns it
        self._identities: dict[Path, dict] = {}
        self._index = self._read_index()
        self._flushed = time.monotonic()

    def relative(self, src: Path) -> Path:
        # abspath, not resolve: a corpus may hold symbolic links to folders elsewhere.
        return Path(os.path.abspath(src)).relative_to(self.corpus_root)

    def prepare(self, src: Path, segment: tuple[float, float] | None = None) -> Prepared:
        """Checks one source (converting it if needed), or cuts ``segment`` (start, end in
        seconds) out of it into the cache; raises AudioSkip with the reason."""
        src = Path(os.path.abspath(src))
        problem = manifest_name_problem(self.relative(src).as_posix())
        if problem:
            raise AudioSkip(f"{NOT_REPRESENTABLE}: {problem}")
        mirror = self.cache_root / self.relative(src)
        converted = mirror.with_suffix(".wav")
        if segment is not None:
            return self._prepare_segment(src, segment, mirror.with_suffix(""))
        key = converted.relative_to(self.cache_root).as_posix()
        identity = self._identity(src) if key in self._index else None
        frames = self._reusable(key, converted, identity)
        if frames is not None:
            check_complete(src)  # converted before truncated sources were refused
            self._claim(converted, src)
            return Prepared(src, converted, frames)
        wav, sr = load_audio(src)
        mono = to_16k_mono(wav, sr)
        check_signal(mono, self.min_samples)
        if not needs_conversion(src, wav, sr):
            self._claim(mirror, src)
            return Prepared(src, None, len(mono))
        self._claim(converted, src)
        identity = identity or self._identity(src)
        self._index.pop(key, None)  # forget the old entry before its file is replaced
        write_wav_atomic(converted, mono)
        if identity is not None:
            source = self.relative(src).as_posix()
            self._index[key] = {**identity, "source": source, "frames": len(mono)}
        self._maybe_flush()
        return Prepared(src, converted, len(mono))

    def _prepare_segment(self, src: Path, segment: tuple, folder: Path) -> Prepared:
        """``folder/{start}-{end}.wav``: always a cache file, reused like a conversion."""
        start, end = segment
        converted = folder / f"{start:.3f}-{end:.3f}.wav"
        key = converted.relative_to(self.cache_root).as_posix()
        self._claim(converted, src)
        identity = self._identity(src)
        frames = self._reusable(key, converted, identity)
        if frames is not None:
            check_complete(src)
            return Prepared(src, converted, frames)
        wav, sr = load_segment(src, start, end)
        mono = to_16k_mono(wav, sr)
        check_signal(mono, self.min_samples)
        self._index.pop(key, None)
        write_wav_atomic(converted, mono)
        if identity is not None:
            source = f"{self.relative(src).as_posix()} {start:g}-{end:g} s"
            self._index[key] = {**identity, "source": source, "frames": len(mono)}
        self._maybe_flush()
        return Prepared(src, converted, len(mono))

    def _claim(self, target: Path, src: Path) -> None:
        owner = self._claims.setdefault(target, src)
        if owner != src:
            raise AudioSkip(
                f"name-clash: {self.relative(src)} and {self.relative(owner)} would both be "
                f"{target.relative_to(self.cache_root)} at 16 kHz"
            )

    def _identity(self, src: Path) -> dict | None:
        """Content identity, hashed once per run and file (segments share their source)."""
        if src not in self._identities:
            try:
                self._identities[src] = content_identity(src)
            except OSError:
                return None
        return self._identities[src]

    def _reusable(self, key: str, converted: Path, identity: dict | None) -> int | None:
        """Frames of a cache file written by an earlier run from a source of the same content."""
        entry = self._index.get(key)
        if entry is None or identity is None or converted.is_symlink():
            return None
        if (entry.get("size"), entry.get("sha256")) != (identity["size"], identity["sha256"]):
            return None
        frames = probe_frames(converted) if converted.is_file() else None
        if frames is None or frames != entry.get("frames") or frames < self.min_samples:
            return None
        return frames

    def _read_index(self) -> dict:
        path = self.cache_root / INDEX_NAME
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # unreadable: every cached file is redone
            logger.warning("%s unreadable (%s): converting every file again", path, exc)
            return {}
        return index if isinstance(index, dict) else {}

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._flushed > INDEX_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Records the content identity of every converted file (``sources.json``)."""
        if self._index or (self.cache_root / INDEX_NAME).exists():
            write_json_atomic(self.cache_root / INDEX_NAME, self._index)
        self._flushed = time.monotonic()

    def layout(self, prepared: list[Prepared]) -> tuple[Path, list[str]]:
        """Chooses the root for all kept files and returns it with their relative paths."""
        in_place = not any(p.converted for p in prepared)
        if in_place and not root_line_problem(str(self.corpus_root)):
            return self.corpus_root, [self.relative(p.src).as_posix() for p in prepared]
        rels = []
        for p in prepared:
            target = p.converted
            if target is None:
                target = self.cache_root / self.relative(p.src)
                _link(p.src, target)
            rels.append(target.relative_to(self.cache_root).as_posix())
        return self.cache_root, rels


def _link(src: Path, target: Path) -> None:
    """Points ``target`` at ``src`` (symlink, else a copy), replacing what was there."""
    if target.is_symlink() and Path(os.readlink(target)) == src:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.symlink(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):  # disk full, ...: say which file
            raise WriteError(target, e) from e
        raise


def prepare_corpus(
    utterances: list[Utterance],
    corpus_root: Path,
    dest: Path,
    min_samples: int = MIN_SAMPLES,
    desc: str = "audio",
) -> tuple[Path, list[Row], list[Skipped]]:
    """Checks/converts every utterance's audio; returns the root, kept rows and skipped files.

    A kept row whose path fairseq could not read back from the manifest (see
    :func:`manifest_name_problem`) is skipped with that reason.
    """
    cache = AudioCache(corpus_root, Path(dest) / CACHE_DIRNAME, min_samples)
    kept: list[tuple[Utterance, Prepared]] = []
    skipped: list[Skipped] = []
    try:
        for utt in tqdm(utterances, desc=desc, unit="file", mininterval=2.0):
            try:
                kept.append((utt, cache.prepare(utt.src, utt.extra.get("segment"))))
            except AudioSkip as exc:
                skipped.append(Skipped(utt.src, str(exc)))
    finally:
        cache.flush()
    root, rels = cache.layout([p for _, p in kept])
    rows = []
    for (utt, p), rel in zip(kept, rels):
        problem = manifest_name_problem(rel, str(root))
        if problem:
            skipped.append(Skipped(utt.src, f"{NOT_REPRESENTABLE}: {problem}"))
        else:
            rows.append(Row(utt, rel, p.n_samples))
    return root, rows, skipped
