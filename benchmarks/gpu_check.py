"""GPU check (about 5 minutes): Vesper pretraining and inference speed on whatever GPU is present.

A WavLM-Large-shaped random teacher and Vesper-4 / Vesper-12 students (initialised from it as in
training), batch 32 x 5 s: updates/s, seconds of audio per second, model FLOPs utilisation (MFU)
against the GPU's bf16 peak, and peak memory, with the online teacher, with stored targets, and
with stored targets plus cached CNN features; fp32 and bf16 (autocast; the teacher in bf16 too,
targets and losses float32). Then the inference real-time factor of Vesper-4/12 vs WavLM-Large.
Stored targets and features are random tensors of the right shape: reading them is the data
loader's work, off the training process.

    bash benchmarks/gpu_check.sh [--json results.json]     # on a GPU
    bash benchmarks/gpu_check.sh --dry-run                 # end to end, tiny, on CPU
"""

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_encoder import forward_flops, matmul_gflops  # noqa: E402
from bench_rtf import benchmark_rtf  # noqa: E402

from vesper_fairseq.criterions.vesper_distill import (  # noqa: E402
    VesperDistillConfig,
    VesperDistillCriterion,
)
from vesper_fairseq.data.teacher import FrozenTeacher  # noqa: E402
from vesper_fairseq.models.vesper import VesperConfig, VesperModel  # noqa: E402
from vesper_fairseq.modules.student import build_student  # noqa: E402
from vesper_fairseq.modules.wavlm import WavLMEncoder  # noqa: E402
from vesper_fairseq.modules.wavlm_config import large_wavlm_config, tiny_wavlm_config  # noqa: E402
from vesper_fairseq.modules.wavlm_layers import conv_output_lengths  # noqa: E402

# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets; others: measured matmul
BF16_PEAK_TFLOPS = {
    "H100 SXM": 989, "H100 80GB HBM3": 989, "H100 PCIe": 756, "H100 NVL": 835, "H200": 989,
    "A100": 312, "L40S": 362, "L4": 121, "A10": 125, "4090": 165,
}  # fmt: skip
MODES = ("online", "stored", "features")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def bf16_peak(device) -> tuple[float, str]:
    """(TFLOP/s, where the figure comes from) of the device's bf16 matrix multiplies."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in BF16_PEAK_TFLOPS.items():
            if key in name:
                return float(peak), f"{name} data sheet"
    rate = matmul_gflops(device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    return rate / 1000, "measured large matmul"


def setup(dry_run: bool, device):
    torch.manual_seed(0)
    if dry_run:
        cfg = tiny_wavlm_config(encoder_layers=12, encoder_embed_dim=32, encoder_ffn_embed_dim=64)
        cfg.encoder_attention_heads, cfg.conv_pos_groups = 2, 2
    else:
        cfg = large_wavlm_config()
    teacher = WavLMEncoder(cfg).to(device).eval()
    students = {n: build_student(teacher, n) for n in (4, 12)}
    return teacher, students


def _vesper(student: WavLMEncoder, teacher_dim: int, sample: dict, device):
    """The model, and the batch's span masks (computed by the data loader's workers in
    training, so not timed here)."""
    cfg = OmegaConf.structured(VesperConfig(teacher_path=None, mask_seed=1))
    model = VesperModel(cfg, student, teacher_dim).to(device).train()
    masks = model.compute_masks(sample["net_input"]["source"].cpu(), None)
    stage1, stage2 = (m.to(device) for m in masks)
    sample["net_input"].update(stage1_mask=stage1, stage2_mask=stage2)
    return model


def _sample(teacher, batch: int, samples: int, device, gen) -> dict:
    cfg = teacher.cfg
    frames = int(conv_output_lengths(torch.tensor(samples), cfg.conv_layers))
    layers = [cfg.encoder_layers // 2, cfg.encoder_layers]
    source = torch.randn(batch, samples, generator=gen).to(device)
    return {
        "id": torch.arange(batch),
        "net_input": {"source": source, "padding_mask": None},
        "stored": {
            layer: torch.randn(batch, frames, cfg.encoder_embed_dim, device=device)
            for layer in layers
        },
        "features": torch.randn(batch, frames, cfg.conv_layers[-1][0], device=device),
    }


def step_flops(teacher, student_layers: int, batch: int, samples: int, mode: str) -> float:
    """Model FLOPs of one update: student forward + backward (3x forward; its frozen CNN only
    forward, and not at all with cached features), heads likewise, plus the online teacher."""
    cfg = teacher.cfg
    student = dataclasses.replace(cfg, encoder_layers=student_layers)
    cnn = forward_flops(cfg, batch, samples) - forward_flops(cfg, batch, samples, cnn=False)
    body = forward_flops(student, batch, samples, cnn=False)
    frames = batch * int(conv_output_lengths(torch.tensor(samples), cfg.conv_layers))
    d = cfg.encoder_embed_dim
    heads = 3 * 2 * frames * (d * 512 + 512 * d)
    flops = 3 * (body + heads) + (0 if mode == "features" else cnn)
    if mode == "online":
        flops += forward_flops(cfg, batch, samples)
    return flops


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(teacher, model, mode, dtype, sample, steps, device) -> dict:
    frozen = FrozenTeacher(teacher)
    middle, last = sorted(sample["stored"])
    by_loss = {"low": middle, "high": last, "cross": middle}  # what the task selects
    criterion = VesperDistillCriterion(VesperDistillConfig(), SimpleNamespace())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    net_input = dict(sample["net_input"])
    if mode == "features":
        net_input["features"] = sample["features"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, warmup = [], 1 if device.type == "cpu" else 2
    for step in range(steps + warmup):
        _sync(device)
        start = time.perf_counter()
        source = net_input["source"].to(dtype)
        if mode == "online":
            outputs, _ = frozen(source, None, [middle, last])
        else:
            outputs = sample["stored"]
        targets = {loss: outputs[layer] for loss, layer in by_loss.items()}
        batch = {"id": sample["id"], "net_input": net_input, "targets": targets}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss, _, _ = criterion(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"step_s": statistics.median(times), "peak_memory_gib": peak}


def run_training(teacher, students, batch, seconds, steps, device, peak_tflops) -> list[dict]:
    samples = int(seconds * 16000)
    sample = _sample(teacher, batch, samples, device, torch.Generator().manual_seed(0))
    rows = []
    for n, student in students.items():
        model = _vesper(student, teacher.embed_dim, sample, device)
        for dtype_name, dtype in DTYPES.items():
            for mode in MODES:
                r = time_training(teacher, model, mode, dtype, sample, steps, device)
                flops = step_flops(teacher, n, batch, samples, mode)
                r.update(student=f"Vesper-{n}", dtype=dtype_name, targets=mode)
                r["updates_per_s"] = 1 / r["step_s"]
                r["audio_s_per_s"] = batch * seconds / r["step_s"]
                r["mfu"] = flops / r["step_s"] / (peak_tflops * 1e12)
                rows.append(r)
                print(_training_line(r), flush=True)
        model.cpu()
    return rows


def _training_line(r) -> str:
    memory = "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f} GiB"
    return (
        f"  {r['student']:<10} {r['dtype']:<5} {r['targets']:<9} {r['updates_per_s']:8.2f} upd/s "
        f"{r['audio_s_per_s']:9.1f} audio s/s  MFU {r['mfu']:6.1%}  peak {memory}"
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny models on CPU, end to end")
    parser.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    parser.add_argument("--batch", type=int, default=None, help="default 32 (dry run: 2)")
    parser.add_argument("--seconds", type=float, default=None, help="default 5 (dry run: 0.5)")
    parser.add_argument("--steps", type=int, default=5, help="timed updates per configuration")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.dry_run:
        device = torch.device(args.device or "cpu")
        torch.set_num_threads(1)  # tiny models: threads only add overhead
    batch = args.batch or (2 if args.dry_run else 32)
    seconds = args.seconds or (0.5 if args.dry_run else 5.0)
    steps = 1 if args.dry_run else args.steps
    peak, peak_source = bf16_peak(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check on {name}: bf16 peak {peak:.3g} TFLOP/s ({peak_source})")
    print(f"pretraining, batch {batch} x {seconds} s, median of {steps} updates")
    teacher, students = setup(args.dry_run, device)
    result = {"device": name, "bf16_peak_tflops": peak, "peak_source": peak_source}
    result["training"] = run_training(teacher, students, batch, seconds, steps, device, peak)
    result["rtf"] = {}
    for dtype in ("float32", "bfloat16"):
        rtf = benchmark_rtf(
            str(device), 1.0 if args.dry_run else 10.0, 1, 1 if args.dry_run else 3,
            dtype=dtype, teacher_cfg=teacher.cfg, with_transformers=not args.dry_run,
        )  # fmt: skip
        result["rtf"][dtype] = rtf
        for n in (4, 12):
            f = rtf[f"Vesper-{n}"]
            print(
                f"  inference {dtype:<8} Vesper-{n:<2} RTF {f['rtf']:.4f} vs WavLM-Large "
                f"{rtf['WavLM-Large']['rtf']:.4f}: {f['speedup']:.2f}x faster"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
