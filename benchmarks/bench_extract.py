"""Feature extraction throughput: `vesper-extract`'s library path (read, chunk, encode, write)
over a manifest of long files. Prints seconds of audio per second and the real-time factor.
Use ``benchmark_extract(...)`` for the figures as a dict."""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vesper_fairseq.features.dump import DumpSettings, dump_features, read_manifest
from vesper_fairseq.modules.student import build_student
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import large_wavlm_config, tiny_wavlm_config


def _encoder(model: str) -> WavLMEncoder:
    torch.manual_seed(0)
    if model == "vesper4":  # the real Vesper-4 shape (random weights: speed only)
        return build_student(WavLMEncoder(large_wavlm_config()), 4).eval()
    return WavLMEncoder(
        tiny_wavlm_config(encoder_layers=4, encoder_embed_dim=256, encoder_ffn_embed_dim=1024)
    ).eval()


def _manifest(folder: Path, files: int, seconds: float) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(files):
        wav = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        sf.write(folder / f"clip{i}.wav", wav, 16000)
        rows.append(f"clip{i}.wav\t{len(wav)}")
    (folder / "bench.tsv").write_text("\n".join([str(folder), *rows]) + "\n")
    return folder / "bench.tsv"


def benchmark_extract(
    model: str | None = None,
    device: str = "cpu",
    files: int = 4,
    seconds: float = 40.0,
    max_chunk: float = 30.0,
    quick: bool = False,
) -> dict:
    model = model or ("vesper4" if device.startswith("cuda") else "small")
    if quick:
        files, seconds = 2, 20.0
    encoder = _encoder(model).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        root, rows = read_manifest(_manifest(Path(tmp), files, seconds))
        settings = DumpSettings(layers=list(range(encoder.num_layers + 1)), max_chunk=max_chunk)
        start = time.perf_counter()
        dump_features(encoder, model, root, rows, Path(tmp) / "out", "bench", settings, device)
        elapsed = time.perf_counter() - start
    audio = files * seconds
    return dict(
        benchmark="extract",
        model=model,
        device=device,
        files=files,
        seconds=seconds,
        max_chunk=max_chunk,
        elapsed_s=elapsed,
        audio_s_per_s=audio / elapsed,
        rtf=elapsed / audio,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["small", "vesper4"], default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each file")
    parser.add_argument("--max-chunk", type=float, default=30.0)
    args = parser.parse_args()
    r = benchmark_extract(args.model, args.device, args.files, args.seconds, args.max_chunk)
    print(
        f"feature extraction, {r['model']} on {r['device']}: {r['files']} files x "
        f"{r['seconds']} s, chunks of {r['max_chunk']} s, all layers, float16"
    )
    print(f"  {r['elapsed_s']:.2f} s, {r['audio_s_per_s']:.1f} s of audio / s, RTF {r['rtf']:.4f}")


if __name__ == "__main__":
    main()
