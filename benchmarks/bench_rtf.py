"""Inference real-time factor of Vesper-4 / Vesper-12 against their WavLM-Large teacher.

RTF = compute seconds / audio seconds (lower is faster). The models are the real sizes with
random weights (speed does not depend on the values). Use ``benchmark_rtf(...)`` for a dict."""

import argparse
import statistics
import time

import torch
from bench_encoder import forward_flops
from transformers import WavLMConfig as HFWavLMConfig
from transformers import WavLMModel

from vesper_fairseq.formats.hf_names import wavlm_to_hf_config, wavlm_to_hf_key
from vesper_fairseq.modules.student import build_student
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import large_wavlm_config


def _median_seconds(model, source, repeats: int, device) -> float:
    times = []
    with torch.inference_mode():
        model(source)  # warm-up
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(source)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def as_transformers(encoder: WavLMEncoder) -> WavLMModel:
    """transformers' WavLMModel holding ``encoder``'s weights (what a user would otherwise run)."""
    hf = WavLMModel(HFWavLMConfig(**wavlm_to_hf_config(encoder.cfg))).eval()
    state = {wavlm_to_hf_key(k): v for k, v in encoder.state_dict().items()}
    hf.load_state_dict(state, strict=True)
    return hf


def benchmark_rtf(
    device: str = "cpu",
    seconds: float = 10.0,
    batch: int = 1,
    repeats: int = 3,
    students=(4, 12),
    dtype: str = "float32",
    teacher_cfg=None,
    with_transformers: bool = True,
) -> dict:
    """``teacher_cfg``: another teacher shape than WavLM-Large's (kept under its name);
    ``with_transformers``: also time transformers' WavLMModel with the teacher's weights."""
    dev = torch.device(device)
    torch_dtype = getattr(torch, dtype)
    torch.manual_seed(0)
    teacher = WavLMEncoder(teacher_cfg or large_wavlm_config()).eval()
    source = torch.randn(batch, int(seconds * 16000), device=dev, dtype=torch_dtype)
    audio = batch * seconds
    models = {"WavLM-Large": teacher}
    if with_transformers:
        models["WavLM-Large (transformers)"] = as_transformers(teacher)
    models.update({f"Vesper-{n}": build_student(teacher, n).eval() for n in students})
    result = dict(benchmark="rtf", device=str(dev), dtype=dtype, seconds=seconds, batch=batch)
    for name, model in models.items():
        model = model.to(dev, torch_dtype)
        elapsed = _median_seconds(model, source, repeats, dev)
        result[name] = dict(
            params_m=sum(p.numel() for p in model.parameters()) / 1e6,
            seconds=elapsed,
            rtf=elapsed / audio,
        )
        model.to("cpu")
    samples = source.size(1)
    large_flops = forward_flops(teacher.cfg, batch, samples)
    for n in students:
        student = result[f"Vesper-{n}"]
        student["speedup"] = result["WavLM-Large"]["rtf"] / student["rtf"]
        if with_transformers:
            hf_rtf = result["WavLM-Large (transformers)"]["rtf"]
            student["speedup_vs_transformers"] = hf_rtf / student["rtf"]
        # both pay the same CNN: at equal efficiency the speed-up is the FLOP ratio
        student["flop_ratio"] = large_flops / forward_flops(
            models[f"Vesper-{n}"].cfg, batch, samples
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = parser.parse_args()
    r = benchmark_rtf(args.device, args.seconds, args.batch, args.repeats, dtype=args.dtype)
    print(f"inference RTF, {r['device']} {r['dtype']}, batch {r['batch']} x {r['seconds']} s")
    for name in ("WavLM-Large", "WavLM-Large (transformers)", "Vesper-4", "Vesper-12"):
        f = r[name]
        speed = ""
        if "speedup" in f:
            speed = (
                f" ({f['speedup']:.2f}x faster than our WavLM-Large, FLOP ratio "
                f"{f['flop_ratio']:.2f}x; {f['speedup_vs_transformers']:.2f}x transformers')"
            )
        print(f"  {name:<26} {f['params_m']:7.2f}M params  RTF {f['rtf']:.4f}{speed}")


if __name__ == "__main__":
    main()
