"""Helpers for tests that run fairseq's real command lines on tiny data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vesper_fairseq.cli.fairseq_command import hydra_train_command
from vesper_fairseq.safe_load import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "vesper_fairseq"
BIN = Path(sys.executable).parent


def write_audio_manifest(
    folder: Path, splits: dict[str, int], seconds=(1.0, 2.0), seed: int = 0
) -> Path:
    """Writes `count` random voiced-noise clips per split and fairseq `{split}.tsv` manifests."""
    rng = np.random.default_rng(seed)
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    for split, count in splits.items():
        rows = []
        for i in range(count):
            n = int(16000 * rng.uniform(*seconds))
            t = np.arange(n) / 16000
            wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 300) * t) + 0.05 * rng.standard_normal(
                n
            )
            name = f"{split}_{i:03d}.wav"
            sf.write(audio / name, wav.astype(np.float32), 16000)
            rows.append(f"{name}\t{n}")
        (folder / f"{split}.tsv").write_text("\n".join([str(audio.resolve()), *rows]) + "\n")
    return folder


def run(cmd: list[str], cwd: Path, timeout: int = 600, extra_env: dict | None = None):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(extra_env or {})
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{cmd[0]} failed ({proc.returncode}):\n{log[-6000:]}"
    return log


def checkpoint_updates(path: Path) -> int:
    """Number of updates a fairseq checkpoint was saved at (our own file in a test: trusted)."""
    state = load_checkpoint(path)  # weights only: the project writes plain types
    return state["optimizer_history"][-1]["num_updates"]


def make_tiny_teacher(path: Path, seed: int = 0, **overrides) -> Path:
    """A randomly initialised tiny WavLM-Large-shaped teacher in the original checkpoint format."""
    from vesper_fairseq.formats.wavlm_checkpoint import save_wavlm_checkpoint
    from vesper_fairseq.modules.wavlm import WavLMEncoder
    from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

    torch.manual_seed(seed)
    save_wavlm_checkpoint(WavLMEncoder(tiny_wavlm_config(**overrides)), path)
    return path


def train_losses(log: str) -> list[float]:
    """Per-update training losses of a run with common.log_interval=1."""
    import re

    return [float(x) for x in re.findall(r"train_inner\W.* loss=([0-9.]+)", log)]


def make_synthetic_manifests(folder: Path, n_speakers=6, clips_per_class=6, seed=0) -> Path:
    """The synthetic emotional corpus (2-3 s clips) and its train/valid/test manifests."""
    from vesper_fairseq.corpora import synthetic

    synthetic.generate(folder / "corpus", n_speakers, clips_per_class, seed)
    synthetic.build(folder / "corpus", folder / "data", n_test_speakers=2, n_valid_speakers=1)
    return folder / "data"


def finetune(data: Path, upstream: Path, save_dir: Path, *overrides, launcher=None, **kwargs):
    """fairseq-hydra-train with examples/finetuning/tiny.yaml (or torchrun with `launcher`)."""
    cmd = hydra_train_command(
        REPO / "examples" / "finetuning",
        "tiny",
        save_dir,
        f"task.data={data}",
        f"model.upstream_path={upstream}",
        *overrides,
        launcher=launcher,
    )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return run(cmd, cwd=Path(save_dir).parent, **kwargs)


def pretrain_command(data, teacher, save_dir, *overrides, config="tiny", launcher=None):
    """fairseq-hydra-train with examples/pretraining/{config}.yaml on `data` and `teacher`."""
    return hydra_train_command(
        REPO / "examples" / "pretraining",
        config,
        save_dir,
        f"task.data={data}",
        f"task.teacher_path={teacher}",
        "common.log_interval=1",
        *overrides,
        launcher=launcher,
    )


def valid_stats(log: str, subset: str = "valid") -> list[dict[str, str]]:
    """The `| key value |` fields of every validation line of a fairseq log."""
    import re

    lines = re.findall(rf"valid on '{subset}' subset \| (.*)", log)
    return [dict(field.strip().split(" ", 1) for field in line.split(" | ")) for line in lines]
