"""Pretraining throughput of Vesper with the online teacher, with precomputed targets, and with
precomputed targets plus cached CNN features (vesper-dump-teacher --with-features).

The three run interleaved, step by step on the same batches. Prints updates/s, seconds of audio
per second, the teacher's share of the step, the speed-ups over the online teacher and the
store's disk cost per hour of audio. Use ``benchmark_pretraining(...)`` for a dict."""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.corpora import synthetic
from vesper_fairseq.criterions.vesper_distill import VesperDistillConfig, VesperDistillCriterion
from vesper_fairseq.formats.wavlm_checkpoint import save_wavlm_checkpoint
from vesper_fairseq.models.vesper import VesperConfig, VesperModel
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import large_wavlm_config, tiny_wavlm_config
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

TEACHERS = {
    # WavLM-Large's depth (24 layers) at a width that a CPU trains in seconds
    "small": lambda: tiny_wavlm_config(
        encoder_layers=24, encoder_embed_dim=128, encoder_ffn_embed_dim=512
    ),
    # WavLM-Large's depth and CNN (512 channels, the part a student shares), 256 wide
    "narrow": lambda: tiny_wavlm_config(
        encoder_layers=24,
        encoder_embed_dim=256,
        encoder_ffn_embed_dim=1024,
        conv_feature_layers="[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2",
        conv_pos=128,
        conv_pos_groups=16,
    ),
    "large": large_wavlm_config,
}
VARIANTS = ("online", "stored", "features")


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
            "--with-features",
        ]
    )
    return {"data": folder / "data", "teacher": teacher, "store": store, "crop": crop}


def _components(paths: dict, variant: str, num_layers: int, device):
    task_cfg = VesperPretrainingConfig(
        data=str(paths["data"]),
        teacher_path=str(paths["teacher"]),
        seed=1,
        target_store=None if variant == "online" else str(paths["store"]),
        stored_features=variant == "features",
        max_sample_size=paths["crop"],
    )
    task = VesperPretrainingTask(OmegaConf.structured(task_cfg))
    task.load_dataset("train")
    model_cfg = VesperConfig(teacher_path=str(paths["teacher"]), num_layers=num_layers, mask_seed=1)
    model = VesperModel.build_model(OmegaConf.structured(model_cfg), task).to(device).train()
    criterion = VesperDistillCriterion(VesperDistillConfig(), task)
    return task, model, criterion


def _step(task, model, criterion, optimizer, batch, step, device):
    """(data, teacher, whole step) seconds of one update on batch number `step`."""
    dataset = task.dataset("train")
    start = time.perf_counter()
    indices = [(step * batch + i) % len(dataset) for i in range(batch)]
    sample = _to(dataset.collater([dataset[i] for i in indices]), device)
    _sync(device)
    loaded = time.perf_counter()
    task.add_teacher_targets(sample)
    _sync(device)
    targets = time.perf_counter()
    loss, _, _ = criterion(model, sample)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    _sync(device)
    done = time.perf_counter()
    audio = (~sample["net_input"]["padding_mask"]).sum().item() / 16000
    return loaded - start, targets - loaded, done - start, audio


def _time_steps(paths, num_layers, batch, steps, device) -> dict:
    runs = {}
    for variant in VARIANTS:
        task, model, criterion = _components(paths, variant, num_layers, device)
        params = [p for p in model.parameters() if p.requires_grad]
        runs[variant] = (task, model, criterion, torch.optim.AdamW(params, lr=1e-4))
    times = {variant: [] for variant in VARIANTS}
    for step in range(steps + 1):  # the first step warms up
        for variant in VARIANTS:  # interleaved: machine load drifts hit all alike
            figures = _step(*runs[variant], batch, step, device)
            if step:
                times[variant].append(figures)
    return {variant: _summary(rows) for variant, rows in times.items()}


def _summary(rows) -> dict:
    data_s, teacher_s, step_s, audio = (list(column) for column in zip(*rows))
    total = statistics.median(step_s)
    return dict(
        step_ms=1000 * total,
        data_ms=1000 * statistics.median(data_s),
        teacher_ms=1000 * statistics.median(teacher_s),
        updates_per_s=1 / total,
        audio_s_per_s=statistics.mean(audio) / total,
        teacher_share=statistics.median(teacher_s) / total,
    )


def _disk_per_hour(store: Path, crop: int) -> dict:
    """MB per hour of (cropped) audio of the targets and of the cached features."""
    frames = sum(int(n) for f in store.glob("train_*.len") for n in f.read_text().split())
    hours = frames * 320 / 16000 / 3600
    size = lambda pattern: sum(p.stat().st_size for p in store.glob(pattern)) / 1e6  # noqa: E731
    return dict(
        targets_mb_per_hour=size("train_*.layer*.npy") / hours,
        features_mb_per_hour=size("train_*.features.npy") / hours,
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
        result = _time_steps(paths, num_layers, batch, steps, dev)
        disk = _disk_per_hour(paths["store"], paths["crop"])
    online = result["online"]["step_ms"]
    return dict(
        benchmark="pretraining",
        teacher=teacher,
        device=str(dev),
        batch=batch,
        seconds=seconds,
        student_layers=num_layers,
        **result,
        stored_speedup=online / result["stored"]["step_ms"],
        features_speedup=online / result["features"]["step_ms"],
        **disk,
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
    for name in VARIANTS:
        f = r[name]
        print(
            f"  {name:<12}{f['step_ms']:>10.1f}{f['updates_per_s']:>12.2f}"
            f"{f['audio_s_per_s']:>12.1f}{f['teacher_share']:>9.0%}"
        )
    print(f"  precomputed targets speed-up: {r['stored_speedup']:.2f}x")
    print(f"  precomputed targets + cached CNN features speed-up: {r['features_speedup']:.2f}x")
    print(
        f"  disk per hour of audio: {r['targets_mb_per_hour']:.0f} MB targets, "
        f"{r['features_mb_per_hour']:.0f} MB CNN features"
    )


if __name__ == "__main__":
    main()
