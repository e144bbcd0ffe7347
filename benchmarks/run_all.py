"""`make bench`: every benchmark on the device present, one table of figures and ratios.

python benchmarks/run_all.py [--device cuda] [--quick] [--json results.json]
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_encoder import benchmark_encoder  # noqa: E402
from bench_extract import benchmark_extract  # noqa: E402
from bench_masking import benchmark_masking  # noqa: E402
from bench_predict import benchmark_predict  # noqa: E402
from bench_pretraining import benchmark_pretraining  # noqa: E402
from bench_rtf import benchmark_rtf  # noqa: E402


def run(device: str, quick: bool) -> tuple[list[tuple[str, str, str]], dict]:
    gpu = device.startswith("cuda")
    rows, raw = [], {}

    # the issue's shapes: WavLM-Large layers (4 of them on a CPU) and Base, 4 x 5 s padded
    shapes = [("large", None if gpu else 4), ("base", None)]
    for size, layers in shapes:
        enc = benchmark_encoder(size, device, 4, 5.0, 3 if quick else 5, layers)
        raw[f"encoder_{size}"] = enc
        what = f"encoder forward ({enc['layers']} x {size}, batch 4 x 5 s padded)"
        rows.append(
            (
                what,
                f"ours {enc['ours_best_ms']:.0f} ms, HF {enc['hf_best_ms']:.0f} ms",
                f"{enc['ratio']:.2f}x transformers' time; {enc['matmul_fraction']:.0%} of "
                f"matmul rate (real frames' FLOPs)",
            )
        )

    rtf = raw["rtf"] = benchmark_rtf(device=device, seconds=4.0 if quick else 10.0, repeats=2)
    for name in ("Vesper-4", "Vesper-12"):
        rows.append(
            (
                f"inference RTF {name} vs WavLM-Large",
                f"{rtf[name]['rtf']:.4f} vs {rtf['WavLM-Large']['rtf']:.4f}",
                f"{rtf[name]['speedup']:.2f}x faster (FLOP ratio {rtf[name]['flop_ratio']:.2f}x); "
                f"{rtf[name]['speedup_vs_transformers']:.2f}x transformers' WavLM-Large",
            )
        )

    pre = raw["pretraining"] = benchmark_pretraining(
        teacher="large" if gpu else "narrow",
        device=device,
        batch=8 if gpu else 4,
        steps=3 if quick else 5,
    )
    names = {
        "online": "online teacher",
        "stored": "stored targets",
        "features": "stored + features",
    }
    for name, what in names.items():
        f = pre[name]
        rows.append(
            (
                f"pretraining step ({pre['teacher']} teacher), {what}",
                f"{f['updates_per_s']:.2f} upd/s, {f['audio_s_per_s']:.1f} audio s/s",
                f"teacher {f['teacher_share']:.0%} of step",
            )
        )
    rows.append(("precomputed vs online targets", "", f"{pre['stored_speedup']:.2f}x faster"))
    rows.append(
        (
            "precomputed targets + CNN features vs online",
            "",
            f"{pre['features_speedup']:.2f}x faster",
        )
    )
    rows.append(
        (
            "target store disk per hour of audio",
            f"{pre['targets_mb_per_hour']:.0f} MB targets",
            f"+ {pre['features_mb_per_hour']:.0f} MB CNN features",
        )
    )

    ext = raw["extract"] = benchmark_extract(device=device, quick=quick)
    rows.append(
        (
            f"feature extraction ({ext['model']})",
            f"{ext['audio_s_per_s']:.1f} audio s/s",
            f"RTF {ext['rtf']:.4f}",
        )
    )
    pred = raw["predict"] = benchmark_predict(device=device, quick=quick)
    rows.append(
        (
            f"vesper-predict ({pred['model']}, {pred['files']} files, {pred['audio_s']:.0f} s)",
            f"{pred['files_per_s']:.2f} files/s",
            f"RTF {pred['rtf']:.4f}",
        )
    )

    masks = raw["masking"] = benchmark_masking(seeds=50 if quick else 200)
    for name, m in masks.items():
        rows.append(
            (
                f"masking {name} (8 speech-like clips; 32 x 5 s, 1 thread)",
                f"stage-1 {m['stage1']:.1%}, stage-2 {m['stage2']:.1%}, "
                f"{m['silence_share']:.1%} of stage 1 in silence",
                f"{m['ms_per_batch32']:.1f} ms per batch",
            )
        )
    return rows, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="shorter inputs, fewer repeats")
    parser.add_argument("--json", default=None, help="also write the raw figures here")
    args = parser.parse_args()
    rows, raw = run(args.device, args.quick)
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"\nvesper-fairseq benchmarks on {name} ({torch.get_num_threads()} threads)\n")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
