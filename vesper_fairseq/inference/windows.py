"""Cutting long recordings into model-sized windows, finding silent ones, aggregating.

A file no longer than the window is one window. A longer file gets windows of exactly the
window length starting every `hop` samples, plus one ending at the last sample when the hops
leave a tail uncovered, so every sample is seen. A window is silent when its RMS level is more
than `silence_db` below the file's speech level (the 90th percentile of 20-ms frame levels),
or below an absolute floor; silent windows are reported but left out of the file's mean.
"""

from dataclasses import dataclass

import numpy as np

from ..modules.wavlm_config import FRAME_STRIDE

FRAME = FRAME_STRIDE  # 20 ms at 16 kHz, the encoder's frame
SPEECH_PERCENTILE = 90
SILENCE_DB = 30.0
FLOOR_DB = -80.0  # about the corpora scripts' silence peak (1e-4)


@dataclass
class Window:
    start: int  # samples
    end: int
    silent: bool = False


def plan_windows(num_samples: int, window: int, hop: int) -> list[Window]:
    if window < 1 or hop < 1:
        raise ValueError(f"window ({window}) and hop ({hop}) must be positive sample counts")
    if num_samples <= window:
        return [Window(0, num_samples)]
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return [Window(s, s + window) for s in starts]


def level_db(x: np.ndarray) -> float:
    power = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    return 10.0 * np.log10(power + 1e-20)


def speech_level_db(wave: np.ndarray) -> float:
    """The level of the loud (speech) part of a file: a high percentile of its frame levels."""
    frames = len(wave) // FRAME
    if frames < 1:
        return level_db(wave)
    power = np.mean(np.square(wave[: frames * FRAME].reshape(frames, FRAME), dtype=np.float64), 1)
    return float(10.0 * np.log10(np.percentile(power, SPEECH_PERCENTILE) + 1e-20))


def mark_silent(wave: np.ndarray, windows: list[Window], silence_db: float = SILENCE_DB):
    """Set `silent` on the windows whose level is far below the file's speech level."""
    threshold = max(speech_level_db(wave) - silence_db, FLOOR_DB)
    for w in windows:
        w.silent = bool(level_db(wave[w.start : w.end]) < threshold)
    return windows


def aggregate(probs: np.ndarray, windows: list[Window]) -> tuple[np.ndarray, str]:
    """The file's probabilities: the mean over the non-silent windows, and how it was made."""
    if len(windows) == 1:
        return probs[0], "single window"
    keep = np.array([not w.silent for w in windows])
    if not keep.any():
        return probs.mean(axis=0), f"mean of all {len(windows)} windows (all silent)"
    return (
        probs[keep].mean(axis=0),
        f"mean of {int(keep.sum())} non-silent windows of {len(windows)}",
    )
