"""Emotion fine-tuning end to end through fairseq-hydra-train, on one and two processes."""

import re

import pytest
import torch
from fairseq_runs import (
    BIN,
    checkpoint_updates,
    finetune,
    make_synthetic_manifests,
    make_tiny_teacher,
    valid_stats,
)

from vesper_fairseq.cli.evaluate import evaluate
from vesper_fairseq.formats import load_encoder
from vesper_fairseq.safe_load import load_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    data = make_synthetic_manifests(root)
    upstream = make_tiny_teacher(root / "upstream.pt")
    log = finetune(data, upstream, root / "ckpt")
    return {"root": root, "data": data, "upstream": upstream, "log": log, "ckpt": root / "ckpt"}


@pytest.mark.slow
def test_tiny_finetuning_learns_emotions_from_prosody(trained):
    stats = valid_stats(trained["log"])
    assert len(stats) == 20
    for key in ("wa", "ua", "wf1", "macro_f1", "best_ua"):
        assert key in stats[-1]
    best = max(float(s["ua"]) for s in stats)
    assert float(stats[-1]["best_ua"]) == pytest.approx(best)
    result = evaluate(str(trained["ckpt"] / "checkpoint_best.pt"), str(trained["root"] / "eval"))
    assert result["num_utterances"] == 48  # two held-out speakers x 4 classes x 6 clips
    assert result["wa"] >= 0.5, result  # chance: 0.25
    assert result["ua"] >= 0.5, result


@pytest.mark.slow
def test_frozen_run_trains_only_the_head(trained):
    state = load_checkpoint(trained["ckpt"] / "checkpoint_last.pt")  # weights only
    groups = state["last_optimizer_state"]["param_groups"]
    assert sum(len(g["params"]) for g in groups) == 5  # layer weights, 2 x Linear (w, b)
    upstream = load_encoder(trained["upstream"]).state_dict()
    saved = {
        k[len("upstream.") :]: v for k, v in state["model"].items() if k.startswith("upstream.")
    }
    assert saved.keys() == upstream.keys()
    for key, value in upstream.items():
        assert torch.equal(saved[key], value), key
    assert state["cfg"]["model"]["upstream"]["encoder_layers"] == 4
    assert checkpoint_updates(trained["ckpt"] / "checkpoint_last.pt") == 180


@pytest.mark.slow
def test_two_process_gloo_validation_matches_one_process(trained, tmp_path):
    """Same model (the fine-tuned one, lr ~0): the valid figures of 2 workers (each scoring half
    of the batches) equal those of one process. (fairseq's cosine schedule refuses lr 0; steps of
    1e-12 change no prediction.)"""
    overrides = [
        f"checkpoint.finetune_from_model={trained['ckpt'] / 'checkpoint_best.pt'}",
        "optimization.lr=[1e-12]",
        "lr_scheduler.warmup_updates=0",
        "lr_scheduler.min_lr=0.0",
        "optimization.max_epoch=1",
        "checkpoint.no_save=true",
        "dataset.batch_size=4",
    ]
    data, upstream = trained["data"], trained["upstream"]
    one = valid_stats(finetune(data, upstream, tmp_path / "one", *overrides))
    launcher = [BIN / "torchrun", "--nproc_per_node=2", "--master_port=29543"]
    launcher += ["-m", "fairseq_cli.hydra_train"]
    log = finetune(
        data,
        upstream,
        tmp_path / "two",
        *overrides,
        "distributed_training.distributed_world_size=2",
        "distributed_training.distributed_backend=gloo",
        launcher=launcher,
    )
    assert "distributed init (rank 1)" in log and "training on 2 devices" in log
    two = valid_stats(log)
    assert len(one) == len(two) == 1
    for key in ("wa", "ua", "wf1", "macro_f1"):
        assert two[0][key] == one[0][key], key
    assert float(two[0]["loss"]) == pytest.approx(float(one[0]["loss"]), rel=1e-4)
    assert float(one[0]["ua"]) > 0.25  # a trained model, not a constant prediction
    assert re.search(r"valid on 'valid' subset", log)
