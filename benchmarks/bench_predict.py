"""Classifying files with `vesper-predict` (the whole command: checkpoint load, audio reading,
windows of the training crop, forward passes, output): files per second and real-time factor
over files of mixed lengths. Use ``benchmark_predict(...)`` for the figures as a dict."""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vesper_fairseq.cli import predict as predict_cli
from vesper_fairseq.models.vesper_classifier import VesperClassifier, VesperClassifierConfig
from vesper_fairseq.modules.student import build_student
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import large_wavlm_config, tiny_wavlm_config

LABELS = ["ang", "hap", "neu", "sad"]


def _checkpoint(path: Path, model: str, crop: int) -> Path:
    """A vesper_classifier checkpoint in fairseq's layout (random weights: speed only)."""
    torch.manual_seed(0)
    if model == "vesper4":
        upstream = build_student(WavLMEncoder(large_wavlm_config()), 4)
    else:
        upstream = WavLMEncoder(
            tiny_wavlm_config(encoder_layers=4, encoder_embed_dim=256, encoder_ffn_embed_dim=1024)
        )
    cfg = VesperClassifierConfig(upstream=upstream.cfg.to_dict(), labels=LABELS)
    classifier = VesperClassifier(cfg, upstream, len(LABELS))
    model_cfg = {"_name": "vesper_classifier", "upstream": cfg.upstream, "labels": LABELS}
    task_cfg = {"_name": "emotion_classification", "max_sample_size": crop, "sample_rate": 16000}
    state = {
        "cfg": {"model": model_cfg, "task": task_cfg},
        "model": classifier.state_dict(),
        "optimizer_history": [{"num_updates": 0}],
        "extra_state": {},
    }
    torch.save(state, path)
    return path


def benchmark_predict(
    model: str | None = None,
    device: str = "cpu",
    files: int = 8,
    quick: bool = False,
    crop_seconds: float = 6.5,
) -> dict:
    model = model or ("vesper4" if device.startswith("cuda") else "small")
    files = 4 if quick else files
    lengths = [3.0, 8.0, 20.0, 5.0][: min(files, 4)] * (files // 4 + 1)
    lengths = lengths[:files]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = _checkpoint(tmp / "clf.pt", model, int(crop_seconds * 16000))
        for i, seconds in enumerate(lengths):
            wav = 0.1 * rng.standard_normal(int(seconds * 16000))
            sf.write(tmp / f"clip{i}.wav", wav.astype(np.float32), 16000)
        argv = [str(ckpt), str(tmp), "--out", str(tmp / "pred.tsv"), "--device", device]
        start = time.perf_counter()
        predict_cli.main(argv + ["--quiet"])
        elapsed = time.perf_counter() - start
    audio = float(sum(lengths))
    return dict(
        benchmark="predict",
        model=model,
        device=device,
        files=files,
        audio_s=audio,
        crop_s=crop_seconds,
        elapsed_s=elapsed,
        files_per_s=files / elapsed,
        rtf=elapsed / audio,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["small", "vesper4"], default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    r = benchmark_predict(args.model, args.device, args.files)
    print(
        f"vesper-predict, {r['model']} classifier on {r['device']}: {r['files']} files, "
        f"{r['audio_s']:.0f} s of audio, {r['crop_s']} s windows at half-window hop"
    )
    print(f"  {r['elapsed_s']:.2f} s, {r['files_per_s']:.2f} files/s, RTF {r['rtf']:.4f}")


if __name__ == "__main__":
    main()
