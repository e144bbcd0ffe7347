"""`EmotionClassifier`: a fine-tuned `vesper_classifier` checkpoint applied to new audio.

    clf = EmotionClassifier.from_checkpoint("checkpoint_best.pt", device="cpu")
    clf.predict("a.mp3").label
    clf.predict(samples, sample_rate=44100)           # (samples,), (samples, ch), (ch, samples)
    clf.predict_batch(["a.wav", "b.flac"])

Audio is read and converted to 16 kHz mono by the manifest scripts' own code. Inputs longer
than the training crop are cut into windows of that length (hop: half a window by default); the
file's probabilities are the mean over its non-silent windows (see `windows`). With
`segment=False` only the first crop is scored, as in training and vesper-evaluate.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..corpora.audio import AudioSkip, check_signal, load_audio, to_16k_mono
from ..modules.wavlm_config import SAMPLE_RATE
from .checkpoint import ClassifierInfo, load_classifier
from .windows import SILENCE_DB, Window, aggregate, mark_silent, plan_windows

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class Segment:
    start: float  # seconds
    end: float
    label: str
    probabilities: dict[str, float]
    silent: bool = False


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    duration: float  # seconds of 16 kHz audio
    aggregate: str  # how `probabilities` was made from the windows
    segments: list[Segment] = field(default_factory=list)
    source: str | None = None


class AudioInputError(ValueError):
    """An input that cannot be classified (unreadable, too short, silent, ...)."""


def as_float_samples(wav: np.ndarray) -> np.ndarray:
    """float32 samples; integer PCM (int16, int32, uint8 ...) scaled to [-1, 1) as a file's."""
    if np.issubdtype(wav.dtype, np.signedinteger):
        return (wav / float(np.iinfo(wav.dtype).max + 1)).astype(np.float32)
    if np.issubdtype(wav.dtype, np.unsignedinteger):  # 8-bit PCM is unsigned, centred on 128
        middle = float(np.iinfo(wav.dtype).max + 1) / 2
        return ((wav - middle) / middle).astype(np.float32)
    return wav.astype(np.float32, copy=False)


class EmotionClassifier:
    def __init__(self, model, info: ClassifierInfo, device="cpu", dtype: str = "float32"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        self.device = torch.device(device)
        if dtype != "float32" and self.device.type != "cuda":
            raise ValueError(f"dtype {dtype} is for GPUs; on {self.device} use float32")
        self.dtype = DTYPES[dtype]
        self.model = model.to(self.device, self.dtype).eval()
        self.info = info
        self.labels = list(info.labels)

    @classmethod
    def from_checkpoint(
        cls,
        path,
        device: str = "cpu",
        dtype: str = "float32",
        allow_pickle: bool = False,
        opt_in: str = "allow_pickle=True",
    ) -> "EmotionClassifier":
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model, info = load_classifier(path, allow_pickle=allow_pickle, opt_in=opt_in)
        return cls(model, info, device, dtype)

    @property
    def window(self) -> int:
        return self.info.crop_samples

    def load_audio(self, audio, sample_rate: int | None = None) -> np.ndarray:
        """16 kHz mono float32 samples from a path or an array: (samples,), or 2-D with the
        channels on the shorter axis ((samples, channels) or (channels, samples))."""
        try:
            if isinstance(audio, str | Path):
                wav, sr = load_audio(Path(audio))
            else:
                if sample_rate is None:
                    raise AudioInputError("an array needs its sample_rate")
                wav = audio.detach().cpu().numpy() if torch.is_tensor(audio) else np.asarray(audio)
                if wav.ndim not in (1, 2):
                    raise AudioInputError(
                        f"expected (samples,) or (samples, channels), got {wav.shape}"
                    )
                if wav.ndim == 2 and wav.shape[0] < wav.shape[1]:
                    wav = wav.T  # (channels, samples), as torchaudio returns
                wav, sr = as_float_samples(wav), int(sample_rate)
            mono = to_16k_mono(wav, sr)
            check_signal(mono)
        except AudioSkip as e:
            raise AudioInputError(str(e)) from None
        return mono

    def predict(self, audio, sample_rate=None, segment=True, hop=None, silence_db=SILENCE_DB):
        """One input -> Prediction (hop in seconds; default half a window)."""
        return self.predict_batch(
            [audio], sample_rate, segment=segment, hop=hop, silence_db=silence_db
        )[0]

    def predict_batch(
        self, inputs, sample_rate=None, batch_size=8, segment=True, hop=None, silence_db=SILENCE_DB
    ) -> list[Prediction]:
        waves = []
        for item in inputs:
            try:
                waves.append(self.load_audio(item, sample_rate))
            except AudioInputError as e:
                name = item if isinstance(item, str | Path) else "array input"
                raise AudioInputError(f"{name}: {e}") from None
        preds = self.predict_waveforms(waves, batch_size, segment, hop, silence_db)
        for item, pred in zip(inputs, preds):
            pred.source = str(item) if isinstance(item, str | Path) else None
        return preds

    def plan(self, wave: np.ndarray, segment=True, hop=None, silence_db=SILENCE_DB):
        if not segment:
            return [Window(0, min(len(wave), self.window))]
        hop_samples = self.window // 2 if hop is None else int(round(hop * SAMPLE_RATE))
        if not 1 <= hop_samples <= self.window:
            raise ValueError(
                f"hop {hop} s is not between one sample and the window "
                f"({self.window / SAMPLE_RATE:g} s): windows would skip audio or not move"
            )
        return mark_silent(wave, plan_windows(len(wave), self.window, hop_samples), silence_db)

    def predict_waveforms(
        self, waves, batch_size=8, segment=True, hop=None, silence_db=SILENCE_DB
    ) -> list[Prediction]:
        """16 kHz mono float32 arrays -> Predictions; windows of all inputs share batches."""
        plans = [self.plan(w, segment, hop, silence_db) for w in waves]
        chunks = [(i, j) for i, plan in enumerate(plans) for j in range(len(plan))]
        crops = [waves[i][plans[i][j].start : plans[i][j].end] for i, j in chunks]
        probs = self.window_probabilities(crops, batch_size)
        out, k = [], 0
        for wave, plan in zip(waves, plans):
            p = probs[k : k + len(plan)]
            k += len(plan)
            out.append(self._prediction(wave, plan, p, segment))
        return out

    def _prediction(self, wave, plan, probs, segment) -> Prediction:
        mean, how = aggregate(probs, plan)
        if not segment and len(wave) > self.window:
            how = f"first {self.info.crop_seconds:g} s only (--no-segment)"
        segments = [
            Segment(
                w.start / SAMPLE_RATE,
                w.end / SAMPLE_RATE,
                self.labels[int(p.argmax())],
                self._named(p),
                w.silent,
            )
            for w, p in zip(plan, probs)
        ]
        return Prediction(
            self.labels[int(mean.argmax())],
            self._named(mean),
            len(wave) / SAMPLE_RATE,
            how,
            segments,
        )

    def _named(self, p) -> dict[str, float]:
        return {label: float(x) for label, x in zip(self.labels, p)}

    @torch.inference_mode()
    def window_probabilities(self, crops: list[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """(len(crops), C) float64 probabilities; crops are batched by length, zero-padded."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        probs = np.zeros((len(crops), len(self.labels)), dtype=np.float64)
        order = sorted(range(len(crops)), key=lambda i: len(crops[i]))
        for b in range(0, len(order), batch_size):
            ids = order[b : b + batch_size]
            length = max(len(crops[i]) for i in ids)
            source = torch.zeros(len(ids), length, dtype=torch.float32)
            padding = torch.ones(len(ids), length, dtype=torch.bool)
            for row, i in enumerate(ids):
                source[row, : len(crops[i])] = torch.from_numpy(crops[i])
                padding[row, : len(crops[i])] = False
            source = source.to(self.device, self.dtype)
            logits = self.model(source, padding.to(self.device) if padding.any() else None)
            probs[ids] = torch.softmax(logits.float(), dim=-1).cpu().double().numpy()
        return probs
