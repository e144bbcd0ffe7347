"""Pretraining throughput of Vesper with the online teacher and with precomputed targets.

Prints updates/s, seconds of audio per second and the teacher's share of the step time.
Use ``benchmark_pretraining(...)`` for the figures as a dict."""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from vesper_fairseq.checkpoints import save_wavlm_checkpoint
from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.corpora import synthetic
from vesper_fairseq.criterions.vesper_distill import VesperDistillConfig, VesperDistillCriterion
from vesper_fairseq.models.vesper import VesperConfig, VesperModel
from vesper_fairseq.modules.wavlm import WavLMEncoder, large_wavlm_config, tiny_wavlm_config
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

TEACHERS = {
    # WavLM-Large's depth (24 layers) at a width that a CPU trains in seconds
    "small": lambda: tiny_wavlm_config(
        encoder_layers=24, encoder_embed_dim=128, encoder_ffn_embed_dim=512
    ),
    "large": large_wavlm_config,
}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _prepare(folder: Path, teacher_size: str, clip_seconds: float) -> dict:
    synthetic.generate(folder / "corpus", n_speakers=4, clips_per_class=4, seed=0)
    synthetic.build(folder / "corpus", folder / "data", n_test_speakers=1, n_valid_speakers=1)
    torch.manual_seed(0)
    teacher = folder / "teacher.pt"
    save_wavlm_checkpoint(WavLMEncoder(TEACHERS[teacher_size]()), teacher)
    crop = int(clip_seconds * 16000)
    store = folder / "store"
    dump_teacher.main(
        [
            str(folder / "data"),
            "--teacher",
            str(teacher),
            "--out",
            str(store),
            "--max-sample-size",
            str(crop),
        ]
    )
    return {"data": folder / "data", "teacher": teacher, "store": store, "crop": crop}


def _components(paths: dict, stored: bool, num_layers: int, device):
    task_cfg = VesperPretrainingConfig(
        data=str(paths["data"]),
        teacher_path=str(paths["teacher"]),
        seed=1,
        target_store=str(paths["store"]) if stored else None,
        max_sample_size=paths["crop"],
    )
    task = VesperPretrainingTask(OmegaConf.structured(task_cfg))
    task.load_dataset("train")
    model_cfg = VesperConfig(teacher_path=str(paths["teacher"]), num_layers=num_layers, mask_seed=1)
    model = VesperModel.build_model(OmegaConf.structured(model_cfg), task).to(device).train()
    criterion = VesperDistillCriterion(VesperDistillConfig(), task)
    return task, model, criterion


def _time_steps(paths, stored, num_layers, batch, steps, device) -> dict:
    task, model, criterion = _components(paths, stored, num_layers, device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    dataset = task.dataset("train")
    data_ms, teacher_ms, step_ms, audio = [], [], [], []
    for step in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        indices = [(step * batch + i) % len(dataset) for i in range(batch)]
        sample = dataset.collater([dataset[i] for i in indices])
        sample = _to(sample, device)
        _sync(device)
        loaded = time.perf_counter()
        task.add_teacher_targets(sample, criterion.target_layers)
        _sync(device)
        targets = time.perf_counter()
        loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        _sync(device)
        done = time.perf_counter()
        if step:
            data_ms.append(1000 * (loaded - start))
            teacher_ms.append(1000 * (targets - loaded))
            step_ms.append(1000 * (done - start))
            audio.append((~sample["net_input"]["padding_mask"]).sum().item() / 16000)
    total = statistics.median(step_ms)
    return dict(
        step_ms=total,
        data_ms=statistics.median(data_ms),
        teacher_ms=statistics.median(teacher_ms),
        updates_per_s=1000 / total,
        audio_s_per_s=statistics.mean(audio) / (total / 1000),
        teacher_share=statistics.median(teacher_ms) / total,
    )


def _to(sample, device):
    if isinstance(sample, dict):
        return {k: _to(v, device) for k, v in sample.items()}
    return sample.to(device) if torch.is_tensor(sample) else sample


def benchmark_pretraining(
    teacher: str = "small",
    device: str = "cpu",
    batch: int = 8,
    steps: int = 5,
    seconds: float = 3.0,
    num_layers: int = 4,
) -> dict:
    dev = torch.device(device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = _prepare(Path(tmp), teacher, seconds)
        online = _time_steps(paths, False, num_layers, batch, steps, dev)
        stored = _time_steps(paths, True, num_layers, batch, steps, dev)
    return dict(
        benchmark="pretraining",
        teacher=teacher,
        device=str(dev),
        batch=batch,
        seconds=seconds,
        student_layers=num_layers,
        online=online,
        stored=stored,
        stored_speedup=online["step_ms"] / stored["step_ms"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teacher", choices=sorted(TEACHERS), default="small")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="crop length")
    parser.add_argument("--student-layers", type=int, default=4)
    args = parser.parse_args()
    r = benchmark_pretraining(
        args.teacher, args.device, args.batch, args.steps, args.seconds, args.student_layers
    )
    print(
        f"pretraining, {r['teacher']} teacher (24 layers) -> {r['student_layers']}-layer "
        f"student, {r['device']}, batch {r['batch']} x <= {r['seconds']} s"
    )
    print(f"  {'targets':<12}{'step ms':>10}{'updates/s':>12}{'audio s/s':>12}{'teacher':>10}")
    for name in ("online", "stored"):
        f = r[name]
        print(
            f"  {name:<12}{f['step_ms']:>10.1f}{f['updates_per_s']:>12.2f}"
            f"{f['audio_s_per_s']:>12.1f}{f['teacher_share']:>9.0%}"
        )
    print(f"  precomputed targets speed-up: {r['stored_speedup']:.2f}x")


if __name__ == "__main__":
    main()
