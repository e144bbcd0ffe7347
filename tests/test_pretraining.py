"""Vesper pretraining through fairseq: task, model, criterion, stored targets."""

import logging
import re
import signal
import subprocess
import time

import pytest
import torch
from fairseq_runs import (
    BIN,
    checkpoint_updates,
    make_tiny_teacher,
    pretrain_command,
    run,
    train_losses,
    write_audio_manifest,
)
from omegaconf import OmegaConf

from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.criterions.vesper_distill import VesperDistillConfig
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

CROP = 48000  # tiny.yaml's task.max_sample_size


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    data = write_audio_manifest(root / "data", {"train": 16, "valid": 4}, seconds=(0.6, 4.0))
    teacher = make_tiny_teacher(root / "teacher.pt")
    store = root / "store"
    for split, shards in (("train", 2), ("valid", 1)):
        for shard in range(shards):
            dump_teacher.main(
                [
                    str(data),
                    "--split",
                    split,
                    "--teacher",
                    str(teacher),
                    "--out",
                    str(store),
                    "--max-sample-size",
                    str(CROP),
                    "--shard",
                    str(shard),
                    "--num-shards",
                    str(shards),
                ]
            )
    return {"data": data, "teacher": teacher, "store": store}


def make_task(setup, **overrides):
    cfg = dict(data=str(setup["data"]), teacher_path=str(setup["teacher"]), seed=1)
    cfg.update(max_sample_size=CROP)
    cfg.update(overrides)
    return VesperPretrainingTask(OmegaConf.structured(VesperPretrainingConfig(**cfg)))


def first_batch(task, split="train", size=5):
    task.load_dataset(split)
    dataset = task.dataset(split)
    return dataset.collater([dataset[i] for i in range(size)])


def test_online_and_stored_targets_are_the_same_for_the_same_crop(setup):
    online_task = make_task(setup)
    stored_task = make_task(setup, target_store=str(setup["store"]))
    online = online_task.add_teacher_targets(first_batch(online_task))
    stored = first_batch(stored_task)
    assert torch.equal(online["net_input"]["source"], stored["net_input"]["source"])
    assert sorted(stored["stored_layers"]) == [2, 4]
    stored = stored_task.add_teacher_targets(stored)
    assert stored_task.target_layers == {"low": 2, "high": 4, "cross": 2}  # M/2, M, M/2
    for loss in ("low", "high", "cross"):
        assert stored["targets"][loss].shape == online["targets"][loss].shape
        # float16 storage: equal to its precision
        torch.testing.assert_close(
            stored["targets"][loss], online["targets"][loss], rtol=2e-3, atol=2e-3
        )
    lengths = (~online["net_input"]["padding_mask"]).sum(-1)
    assert lengths.min() < lengths.max()  # the batch really is padded


def test_task_names_the_target_layers_and_reads_the_criterion_keys(setup):
    task = make_task(setup, low_target_layer=1)
    task.build_criterion(OmegaConf.structured(VesperDistillConfig(high_target_layer=3)))
    assert task.target_layers == {"low": 1, "high": 3, "cross": 2}
    batch = first_batch(task, size=1)  # no padding
    layers = task.teacher.encoder(batch["net_input"]["source"], normalize=False).layer_results
    targets = task.add_teacher_targets(batch)["targets"]
    torch.testing.assert_close(targets["low"], layers[1])
    torch.testing.assert_close(targets["high"], layers[3])
    with pytest.raises(ValueError, match="criterion.low_target_layer=3 and task.low_tar"):
        task.build_criterion(OmegaConf.structured(VesperDistillConfig(low_target_layer=3)))
    stored = make_task(setup, target_store=str(setup["store"]), high_target_layer=3)
    with pytest.raises(ValueError, match=r"the target store has no teacher layers \[3\]"):
        stored.add_teacher_targets(first_batch(stored, size=2))


def test_store_refuses_another_crop_policy(setup):
    task = make_task(setup, target_store=str(setup["store"]), max_sample_size=CROP // 2)
    with pytest.raises(ValueError, match="was computed with crop"):
        task.load_dataset("train")
    task = make_task(setup, target_store=str(setup["store"]), crop="random")
    with pytest.raises(ValueError, match="crop=first"):
        task.load_dataset("train")


def test_dump_is_resumable_shard_by_shard(setup, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    store, args = tmp_path / "store", [str(setup["data"]), "--teacher", str(setup["teacher"])]
    args += ["--out", str(store), "--max-sample-size", str(CROP), "--num-shards", "2"]
    dump_teacher.main(args + ["--shard", "0"])
    finished = (store / "train_0_2.layer4.npy").stat().st_mtime_ns
    (store / "train_1_2.layer4.npy.tmp").write_bytes(b"half-written by a killed run")
    with pytest.raises(ValueError, match="finished shards"):
        make_task(setup, target_store=str(store)).load_dataset("train")

    dump_teacher.main(args + ["--shard", "0"])
    assert "already finished" in caplog.text
    assert (store / "train_0_2.layer4.npy").stat().st_mtime_ns == finished
    dump_teacher.main(args + ["--shard", "1"])
    assert not list(store.glob("*.tmp"))
    make_task(setup, target_store=str(store)).load_dataset("train")


def hydra_cmd(setup, save_dir, *overrides, **kwargs) -> list:
    return pretrain_command(setup["data"], setup["teacher"], save_dir, *overrides, **kwargs)


def hydra_train(setup, save_dir, *overrides, **kwargs):
    return run(hydra_cmd(setup, save_dir, *overrides), cwd=save_dir.parent, **kwargs)


@pytest.mark.slow
def test_tiny_pretraining_loss_goes_down(setup, tmp_path):
    log = hydra_train(setup, tmp_path / "ckpt", "optimization.max_update=40")
    losses = train_losses(log)
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses
    for key in ("loss_low", "loss_high", "loss_cross", "mask_stage1", "mask_stage2"):
        assert f"{key}=" in log
    ratio = float(re.findall(r"mask_stage1=([0-9.]+)", log)[-1])
    assert 0.3 < ratio < 0.7  # about 0.64 of the real frames


@pytest.mark.slow
def test_online_and_stored_targets_give_the_same_first_batch_loss(setup, tmp_path):
    online = train_losses(hydra_train(setup, tmp_path / "a", "optimization.max_update=1"))
    stored = train_losses(
        hydra_train(
            setup,
            tmp_path / "b",
            "optimization.max_update=1",
            f"task.target_store={setup['store']}",
        )
    )
    assert len(online) == len(stored) == 1
    assert stored[0] == pytest.approx(online[0], rel=1e-3)


@pytest.mark.slow
def test_killed_run_resumes_from_checkpoint_last(setup, tmp_path):
    save = tmp_path / "ckpt"
    save.mkdir()
    cmd = hydra_cmd(
        setup, save, "optimization.max_update=100000", "checkpoint.save_interval_updates=5"
    )
    proc = subprocess.Popen(
        [str(c) for c in cmd], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    last, deadline = save / "checkpoint_last.pt", time.time() + 300
    try:
        while not (last.exists() and checkpoint_updates(last) >= 10):
            assert proc.poll() is None and time.time() < deadline, "training stopped or hung"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = checkpoint_updates(last)
    log = hydra_train(setup, save, f"optimization.max_update={killed_at + 5}")
    assert re.search(
        rf"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ {killed_at} updates", log
    )
    assert checkpoint_updates(last) == killed_at + 5
    log = hydra_train(setup, save, f"optimization.max_update={killed_at + 5}")  # finished
    assert "training is complete: the checkpoint is at update" in log
    assert checkpoint_updates(last) == killed_at + 5


@pytest.mark.slow
def test_two_process_gloo_pretraining(setup, tmp_path):
    save = tmp_path / "ckpt"
    torchrun = [BIN / "torchrun", "--nproc_per_node=2", "--master_port=29541", "-m"]
    overrides = ["distributed_training.distributed_world_size=2", "optimization.max_update=6"]
    launcher = [*torchrun, "fairseq_cli.hydra_train"]
    backend = "distributed_training.distributed_backend=gloo"
    log = run(hydra_cmd(setup, save, backend, *overrides, launcher=launcher), cwd=tmp_path)
    assert "distributed init (rank 1)" in log and "training on 2 devices" in log
    assert checkpoint_updates(save / "checkpoint_last.pt") == 6
    assert re.search(r"\| loss_low [0-9.]+ \| loss_high [0-9.]+ \| loss_cross", log)


def test_online_teacher_serves_half_precision_batches(setup):
    task = make_task(setup)
    batch = first_batch(task)
    full, _ = task.teacher(batch["net_input"]["source"], batch["net_input"]["padding_mask"], [4])
    half = batch["net_input"]["source"].to(torch.bfloat16)
    targets, _ = task.teacher(half, batch["net_input"]["padding_mask"], [4])
    assert targets[4].dtype == torch.float32 and not targets[4].is_inference()
    # the teacher computes in bf16 too (test_precision.py): bf16 rounding of values up to ~4
    torch.testing.assert_close(targets[4], full[4], rtol=0.05, atol=0.1)


def test_audio_at_another_rate_is_refused(setup):
    with pytest.raises(ValueError, match="task.sample_rate=44100: WavLM encoders take 16000 Hz"):
        make_task(setup, sample_rate=44100)
