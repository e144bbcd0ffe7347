"""A small deterministic corpus of synthetic "emotional" speech, for demos and smoke tests.

Each clip is a voiced, speech-like signal: a glottal impulse train following a slowly varying
pitch contour (declination, phrase and syllable accents), shaped by a spectral tilt and a
cascade of three formant resonances (vowel formants of Peterson & Barney, scaled per speaker),
cut into syllables by an amplitude envelope, with consonant-like noise bursts and pauses.
Classes differ the way emotions do in prosody (pitch level and range, loudness, speaking rate,
voice brightness); speakers differ in base pitch and vocal-tract length; every clip draws its
own parameters around those, so classes overlap a little.

Layout: ``ROOT/wav/{speaker}/{speaker}_{emotion}_{k:03d}.wav`` (16 kHz mono, 16-bit);
:func:`build` writes train/valid/test manifests with held-out speakers for valid and test.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vesper_fairseq.corpora.audio import MIN_SAMPLES, write_wav_atomic
from vesper_fairseq.corpora.manifest import CorpusLayoutError, Row, Utterance, summarize
from vesper_fairseq.corpora.options import option
from vesper_fairseq.corpora.pipeline import ManifestPlan, build_manifests
from vesper_fairseq.modules.wavlm_config import SAMPLE_RATE

logger = logging.getLogger(__name__)

CLASSES = ["ang", "hap", "neu", "sad"]


@dataclass(frozen=True)
class Prosody:
    pitch: float  # factor on the speaker's base F0
    range_st: float  # pitch excursion, semitones
    rate: float  # syllables per second
    gain_db: float  # loudness relative to neutral
    tilt: float  # source spectral slope exponent (closer to 0 = brighter, pressed voice)


PROSODY = {
    "ang": Prosody(pitch=1.30, range_st=5.0, rate=5.2, gain_db=8.0, tilt=-1.2),
    "hap": Prosody(pitch=1.40, range_st=7.5, rate=4.6, gain_db=4.0, tilt=-1.6),
    "neu": Prosody(pitch=1.00, range_st=2.5, rate=4.0, gain_db=0.0, tilt=-2.0),
    "sad": Prosody(pitch=0.85, range_st=1.2, rate=2.8, gain_db=-8.0, tilt=-2.6),
}
# F1, F2, F3 (Hz) of adult male vowels /a i e o u ae/ (Peterson & Barney 1952).
VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [530, 1840, 2480], [570, 840, 2410], [300, 870, 2240]]
    + [[660, 1720, 2410]],
    dtype=np.float64,
)
BANDWIDTHS = np.array([80.0, 100.0, 140.0])
_NAME = re.compile(r"^(?P<speaker>spk\d+)_(?P<emo>[a-z]{3})_(?P<k>\d+)$")


@dataclass(frozen=True)
class Voice:
    name: str
    f0: float  # base pitch, Hz
    formant_scale: float  # shorter vocal tract -> higher formants


def make_voices(n_speakers: int, seed: int) -> list[Voice]:
    rng = np.random.default_rng([seed, 7919])
    voices = []
    for i in range(n_speakers):
        female = i % 2 == 1
        f0 = rng.uniform(185, 225) if female else rng.uniform(100, 130)
        scale = rng.uniform(1.12, 1.2) if female else rng.uniform(0.95, 1.03)
        voices.append(Voice(f"spk{i:02d}", float(f0), float(scale)))
    return voices


def _syllables(rng, duration: float, rate: float) -> list[tuple[float, float]]:
    """(start, end) seconds of voiced syllables; pauses between words and phrases."""
    out, t = [], rng.uniform(0.05, 0.2)
    while True:
        length = rng.uniform(0.55, 0.85) / rate
        if t + length > duration - 0.05:
            return out
        out.append((t, t + length))
        t += length + rng.uniform(0.1, 0.4) / rate
        if rng.random() < 0.2:
            t += rng.uniform(0.12, 0.3)


def _resonances(freqs: np.ndarray, formants: np.ndarray, tilt: float) -> np.ndarray:
    """Magnitude response: source tilt times a cascade of second-order resonators."""
    h = (1.0 + freqs / 150.0) ** tilt
    for fc, bw in zip(formants, BANDWIDTHS):
        h = h * fc**2 / np.sqrt((fc**2 - freqs**2) ** 2 + (bw * freqs) ** 2)
    return h


def synthesize(voice: Voice, emotion: str, rng: np.random.Generator, sr: int = SAMPLE_RATE):
    """One clip of 2-3 s as float32 samples in [-1, 1]."""
    p = PROSODY[emotion]
    rate = p.rate * rng.uniform(0.88, 1.12)
    duration = rng.uniform(2.0, 3.0)
    n = int(duration * sr)
    t = np.arange(n) / sr
    sylls = _syllables(rng, duration, rate)
    # Pitch: phrase-level sine + declination + an accent bump on some syllables (semitones).
    contour = 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 0.7) * t + rng.uniform(0, 2 * np.pi))
    contour -= 0.6 * t / duration
    for s, e in sylls:
        accent = rng.uniform(-0.3, 1.0)
        contour += accent * np.exp(-0.5 * ((t - (s + e) / 2) / (0.35 * (e - s))) ** 2)
    f0 = voice.f0 * p.pitch * rng.uniform(0.94, 1.06)
    f0 = f0 * 2.0 ** (p.range_st * rng.uniform(0.8, 1.2) * contour / 12.0)
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    out = np.zeros(n)
    tail = int(0.03 * sr)
    for s, e in sylls:
        i0, i1 = int(s * sr), int(e * sr)
        seg = np.zeros(i1 - i0 + tail)
        seg[: i1 - i0] = pulses[i0:i1]
        n_fft = 1 << int(np.ceil(np.log2(len(seg))))
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
        formants = VOWELS[rng.integers(len(VOWELS))] * voice.formant_scale
        voiced = np.fft.irfft(np.fft.rfft(seg, n_fft) * _resonances(freqs, formants, p.tilt))
        voiced = voiced[: len(seg)]
        x = np.clip(np.arange(len(seg)) / (i1 - i0), 0.0, 1.0)
        env = np.sin(np.pi * x) ** 0.7 * rng.uniform(0.7, 1.0)
        seg_out = voiced * env / (np.sqrt(np.mean(voiced[: i1 - i0] ** 2)) + 1e-9)
        if rng.random() < 0.6:  # consonant-like noise burst at the syllable onset
            k = min(int(rng.uniform(0.02, 0.05) * sr), len(seg_out))
            burst = rng.standard_normal(k) * np.exp(-np.linspace(0, 4, k)) * 0.5
            seg_out[:k] += np.diff(burst, prepend=0.0)
        end = min(n, i0 + len(seg_out))
        out[i0:end] += seg_out[: end - i0]
    level = 0.05 * 10 ** ((p.gain_db + rng.uniform(-1.5, 1.5)) / 20)
    out = out * level + 3e-4 * rng.standard_normal(n)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


@dataclass
class SyntheticConfig:
    speakers: int = option(8, "speakers of the generated corpus")
    clips_per_class: int = option(10, "clips per class and speaker")
    seed: int = option(0, "seed of the generated audio")
    test_speakers: int = option(2, "speakers held out for test (the last by name)")
    valid_speakers: int = option(1, "speakers held out for valid (the last before test)")


def generate(
    root: Path,
    n_speakers: int = SyntheticConfig.speakers,
    clips_per_class: int = SyntheticConfig.clips_per_class,
    seed: int = SyntheticConfig.seed,
) -> list[Path]:
    """Writes the corpus under ``root/wav``; the same arguments always give the same files."""
    paths = []
    for voice in make_voices(n_speakers, seed):
        folder = Path(root) / "wav" / voice.name
        folder.mkdir(parents=True, exist_ok=True)
        for c, emotion in enumerate(CLASSES):
            for k in range(clips_per_class):
                rng = np.random.default_rng([seed, int(voice.name[3:]), c, k])
                path = folder / f"{voice.name}_{emotion}_{k:03d}.wav"
                write_wav_atomic(path, synthesize(voice, emotion, rng))
                paths.append(path)
    return paths


def build(
    root: Path,
    dest: Path,
    n_test_speakers: int = SyntheticConfig.test_speakers,
    n_valid_speakers: int = SyntheticConfig.valid_speakers,
) -> str:
    """Manifests with the last speakers (sorted by name) held out for test, then valid."""
    root, dest = Path(root).resolve(), Path(dest).resolve()
    utts = []
    for path in sorted((root / "wav").glob("*/*.wav")):
        m = _NAME.match(path.stem)
        if m and m["emo"] in CLASSES:
            utts.append(Utterance(path, m["emo"], m["speaker"]))
    speakers = sorted({u.speaker for u in utts})
    if len(speakers) < n_test_speakers + n_valid_speakers + 1:
        raise CorpusLayoutError(
            f"{root}: expected wav/spkNN/spkNN_{{emo}}_NNN.wav from at least "
            f"{n_test_speakers + n_valid_speakers + 1} speakers, found {len(speakers)}"
        )
    test = set(speakers[len(speakers) - n_test_speakers :])
    valid = set(speakers[len(speakers) - n_test_speakers - n_valid_speakers :]) - test

    def split(rows: list[Row]) -> dict[str, dict[str, list[Row]]]:
        return {
            "": {
                "train": [r for r in rows if r.utt.speaker not in test | valid],
                "valid": [r for r in rows if r.utt.speaker in valid],
                "test": [r for r in rows if r.utt.speaker in test],
            }
        }

    plan = ManifestPlan(
        title="synthetic",
        corpus_root=root,
        dest=dest,
        utterances=utts,
        skipped=[],
        outputs={"": ["train", "valid", "test"]},
        split=split,
        classes=CLASSES,
        may_be_empty=("valid",) if n_valid_speakers == 0 else (),
        min_samples=MIN_SAMPLES,
        settings={"test_speakers": n_test_speakers, "valid_speakers": n_valid_speakers},
    )
    built = build_manifests(plan)
    note = f"held-out speakers: valid {sorted(valid)}, test {sorted(test)}"
    return summarize("synthetic emotional speech", built.layout[""], built.skipped, CLASSES, [note])
