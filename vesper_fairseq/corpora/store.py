"""One root per manifest: the corpus itself, or a 16 kHz mono cache under DEST.

Sources fairseq can read as they are (soundfile formats, 16 kHz, mono) are used in place. Any
other source is decoded once, averaged to mono, resampled with soxr and written to
``DEST/wav16k/<same relative path>.wav``. When at least one file needed conversion, every
kept file is served from the cache (the others as symbolic links, or copies where links are
not possible), so each tsv has a single root. The source corpus is never written to.
"""

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vesper_fairseq.corpora.audio import (
    MIN_SAMPLES,
    AudioSkip,
    check_signal,
    load_audio,
    needs_conversion,
    probe_frames,
    to_16k_mono,
    write_wav_atomic,
)
from vesper_fairseq.corpora.manifest import Row, Skipped, Utterance

logger = logging.getLogger(__name__)

CACHE_DIRNAME = "wav16k"


@dataclass
class Prepared:
    src: Path
    converted: Path | None  # file written in the cache, None when the source is used in place
    n_samples: int


class AudioStore:
    """Validates sources and converts what fairseq cannot read as is into the cache."""

    def __init__(self, corpus_root: Path, cache_root: Path, min_samples: int = MIN_SAMPLES):
        self.corpus_root = Path(corpus_root).resolve()
        self.cache_root = Path(cache_root).resolve()
        if self.cache_root == self.corpus_root or self.corpus_root in self.cache_root.parents:
            raise ValueError(
                f"DEST's cache {self.cache_root} lies inside the corpus {self.corpus_root}; "
                "choose a DEST outside the corpus (the corpus is never written to)"
            )
        self.min_samples = min_samples
        self._claims: dict[Path, Path] = {}  # cache path -> the source that owns it

    def relative(self, src: Path) -> Path:
        # abspath, not resolve: a corpus may hold symbolic links to folders elsewhere.
        return Path(os.path.abspath(src)).relative_to(self.corpus_root)

    def prepare(self, src: Path) -> Prepared:
        """Checks one source (converting it if needed); raises AudioSkip with the reason."""
        src = Path(os.path.abspath(src))
        mirror = self.cache_root / self.relative(src)
        converted = mirror.with_suffix(".wav")
        frames = self._reusable(src, converted)
        if frames is not None:
            self._claim(converted, src)
            return Prepared(src, converted, frames)
        wav, sr = load_audio(src)
        mono = to_16k_mono(wav, sr)
        check_signal(mono, self.min_samples)
        if not needs_conversion(src, wav, sr):
            self._claim(mirror, src)
            return Prepared(src, None, len(mono))
        self._claim(converted, src)
        write_wav_atomic(converted, mono)
        return Prepared(src, converted, len(mono))

    def _claim(self, target: Path, src: Path) -> None:
        owner = self._claims.setdefault(target, src)
        if owner != src:
            raise AudioSkip(
                f"name-clash: {self.relative(src)} and {self.relative(owner)} would both be "
                f"{target.relative_to(self.cache_root)} at 16 kHz"
            )

    def _reusable(self, src: Path, converted: Path) -> int | None:
        """Frames of a cache file written by an earlier run from this unchanged source."""
        if converted.is_symlink() or not converted.is_file() or not src.is_file():
            return None
        if converted.stat().st_mtime < src.stat().st_mtime:
            return None
        frames = probe_frames(converted)
        return frames if frames is not None and frames >= self.min_samples else None

    def layout(self, prepared: list[Prepared]) -> tuple[Path, list[str]]:
        """Chooses the root for all kept files and returns it with their relative paths."""
        if not any(p.converted for p in prepared):
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_corpus(
    utterances: list[Utterance],
    corpus_root: Path,
    dest: Path,
    min_samples: int = MIN_SAMPLES,
    desc: str = "audio",
) -> tuple[Path, list[Row], list[Skipped]]:
    """Checks/converts every utterance's audio; returns the root, kept rows and skipped files."""
    store = AudioStore(corpus_root, Path(dest) / CACHE_DIRNAME, min_samples)
    kept: list[tuple[Utterance, Prepared]] = []
    skipped: list[Skipped] = []
    for utt in tqdm(utterances, desc=desc, unit="file", mininterval=2.0):
        try:
            kept.append((utt, store.prepare(utt.src)))
        except AudioSkip as exc:
            skipped.append(Skipped(utt.src, str(exc)))
    root, rels = store.layout([p for _, p in kept])
    rows = [Row(utt, rel, p.n_samples) for (utt, p), rel in zip(kept, rels)]
    return root, rows, skipped
