"""Reading, checking and converting corpus audio to 16 kHz mono.

Every problem that makes a file unusable raises :class:`AudioSkip` with a short reason whose
first word is a category (``unreadable``, ``empty``, ``truncated``, ``zero-length``,
``too-short``, ``silent``, ``no-audio``, ``name-clash``); manifest builders list those in
``skipped.tsv`` instead of crashing. Every reader of audio files (manifest scripts,
vesper-predict, vesper-extract, the training datasets) checks the header of a WAV or AIFF file
against its size first (:mod:`vesper_fairseq.corpora.audio_headers`): libsndfile would read a
file cut short without an error, as shorter audio.
"""

import logging
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vesper_fairseq.corpora.audio_headers import truncation_problem
from vesper_fairseq.io_utils import atomic_path
from vesper_fairseq.modules.wavlm_config import RECEPTIVE_FIELD, SAMPLE_RATE

logger = logging.getLogger(__name__)

# Receptive field of the wav2vec 2.0 / WavLM convolutional feature extractor (one frame).
MIN_SAMPLES = RECEPTIVE_FIELD
# Peak amplitude below which a clip counts as silent (about -80 dBFS, 3 LSB of 16-bit PCM).
SILENCE_PEAK = 1e-4

# Extensions libsndfile decodes; anything else (mp4, m4a, mkv, ...) is decoded with PyAV.
SOUNDFILE_EXTS = {"." + fmt.lower() for fmt in sf.available_formats()} | {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
}


class AudioSkip(Exception):
    """A file that cannot be used; ``str(exc)`` is the reason written to skipped.tsv."""


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decodes ``path`` into float32 samples of shape (frames, channels) and its sample rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioSkip("missing: file not found")
    if path.stat().st_size == 0:
        raise AudioSkip("empty: file has 0 bytes")
    check_complete(path)
    if path.suffix.lower() in SOUNDFILE_EXTS:
        return _load_soundfile(path)
    return _load_pyav(path)


def load_segment(path: Path, start: float, end: float) -> tuple[np.ndarray, int]:
    """Samples from ``start`` to ``end`` seconds of ``path`` (a segment of a long recording,
    e.g. EmoBox's PAVOQUE records): read by seeking where libsndfile can, else cut from the
    decoded file."""
    path = Path(path)
    if path.suffix.lower() in SOUNDFILE_EXTS and path.is_file() and path.stat().st_size > 0:
        check_complete(path)
        try:
            with sf.SoundFile(str(path)) as f:
                first, last = _segment_frames(start, end, f.samplerate, f.frames)
                f.seek(first)
                return f.read(last - first, dtype="float32", always_2d=True), f.samplerate
        except AudioSkip:
            raise
        except Exception:  # not seekable or unreadable: load_audio gives the reason
            pass
    wav, sr = load_audio(path)
    first, last = _segment_frames(start, end, sr, len(wav))
    return wav[first:last], sr


def check_complete(path: Path) -> None:
    """Raises ``AudioSkip("truncated: ...")`` for a WAV or AIFF file holding less audio than its
    header declares (its header and size only: cheap on any corpus)."""
    problem = truncation_problem(path)
    if problem:
        raise AudioSkip(problem)


def _segment_frames(start: float, end: float, sr: int, total: int) -> tuple[int, int]:
    first, last = round(start * sr), round(end * sr)
    if not 0 <= first < last:
        raise AudioSkip(f"bad-segment: start {start:g} s, end {end:g} s")
    if last > total + sr // 100:  # more than 10 ms past the end
        raise AudioSkip(f"bad-segment: ends at {end:g} s, after the file's {total / sr:g} s")
    return first, min(last, total)


def _load_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError, RuntimeError, TypeError
        reason = re.sub(r"^Error opening .*?: ", "", _first_line(exc))
        raise AudioSkip(f"unreadable: {reason}{_lfs_hint(path)}") from None
    return wav, sr


def _load_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioSkip("no-audio: the file has no audio stream")
            stream = container.streams.audio[0]
            # Convert to planar float at the stream's own rate and layout; resampling is soxr's.
            planar = av.AudioResampler(format="fltp")
            chunks, sr = [], stream.codec_context.sample_rate
            for frame in container.decode(stream):
                for out in planar.resample(frame):
                    chunks.append(out.to_ndarray())
                    sr = out.sample_rate
            for out in planar.resample(None):
                chunks.append(out.to_ndarray())
    except AudioSkip:
        raise
    except Exception as exc:  # av.error.* and decoder errors
        raise AudioSkip(f"unreadable: {type(exc).__name__}: {_first_line(exc)}") from None
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), sr
    return np.concatenate(chunks, axis=1).T.astype(np.float32, copy=False), sr


def to_16k_mono(wav: np.ndarray, sr: int) -> np.ndarray:
    """Averages the channels and resamples to 16 kHz with soxr; returns float32 (frames,)."""
    mono = wav.mean(axis=1) if wav.ndim == 2 else wav
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sr != SAMPLE_RATE and len(mono) > 0:
        mono = soxr.resample(mono, sr, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
    return mono


def check_signal(mono: np.ndarray, min_samples: int = MIN_SAMPLES) -> None:
    """Raises :class:`AudioSkip` when 16 kHz mono samples cannot feed the model."""
    if len(mono) == 0:
        raise AudioSkip("zero-length: no audio samples")
    if len(mono) < min_samples:
        raise AudioSkip(f"too-short: {len(mono)} samples < {min_samples} at {SAMPLE_RATE} Hz")
    if not np.all(np.isfinite(mono)):
        raise AudioSkip("unreadable: samples are not finite")
    if float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise AudioSkip(f"silent: peak amplitude below {SILENCE_PEAK:g}")


def needs_conversion(path: Path, wav: np.ndarray, sr: int) -> bool:
    """True when fairseq's reader (soundfile, 16 kHz mono) could not use the file as it is."""
    return sr != SAMPLE_RATE or wav.shape[1] != 1 or path.suffix.lower() not in SOUNDFILE_EXTS


def write_wav_atomic(path: Path, mono: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Writes 16-bit PCM wav through a temporary file in the same folder."""
    with atomic_path(path, suffix=".tmp.wav") as tmp:
        sf.write(tmp, np.clip(mono, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")


def probe_frames(path: Path) -> int | None:
    """Frames of a complete 16 kHz mono file soundfile can open, else None (used to reuse the
    cache)."""
    if truncation_problem(path):
        return None
    try:
        info = sf.info(str(path))
    except Exception:
        return None
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        return None
    return int(info.frames)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _lfs_hint(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return ""
    if head.startswith(b"version https://git-lfs"):
        return " (a git-lfs pointer, not audio: run `git lfs pull` in the corpus)"
    return ""
