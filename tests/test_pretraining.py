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
    PLUGIN,
    REPO,
    checkpoint_updates,
    make_tiny_teacher,
    run,
    train_losses,
    write_audio_manifest,
)
from omegaconf import OmegaConf

from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.cli.fairseq_command import hydra_train_command
from vesper_fairseq.criterions.vesper_distill import VesperDistillConfig
from vesper_fairseq.safe_load import load_checkpoint
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

CONFIGS = REPO / "examples" / "pretraining"
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


def hydra_cmd(setup, save_dir, *overrides, config="tiny", launcher=None) -> list:
    return hydra_train_command(
        CONFIGS,
        config,
        save_dir,
        f"task.data={setup['data']}",
        f"task.teacher_path={setup['teacher']}",
        "common.log_interval=1",
        *overrides,
        launcher=launcher,
    )


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


@pytest.mark.parametrize("name,layers", [("vesper4", 4), ("vesper12", 12)])
def test_recipe_configs_hold_the_authors_numbers(name, layers):
    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    opt, sched = cfg.optimization, cfg.lr_scheduler
    assert cfg.model.num_layers == layers and cfg.model.freeze_feature_extractor
    assert cfg.task.max_sample_size == 5 * 16000 and cfg.task.crop == "first"
    assert cfg.dataset.batch_size * opt.update_freq[0] == 32
    assert cfg.optimizer.weight_decay == 0.01 and opt.lr[0] == 5e-4 and opt.clip_norm == 0
    assert sched.warmup_updates == 0.05 * opt.max_update
    assert sched.lr_period_updates == opt.max_update - sched.warmup_updates
    assert sched.min_lr == pytest.approx(0.01 * opt.lr[0])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vesper4", "vesper12"])
def test_recipe_configs_train_from_a_24_layer_teacher(name, setup, tmp_path):
    teacher = make_tiny_teacher(tmp_path / "teacher24.pt", encoder_layers=24)
    save = tmp_path / "ckpt"
    overrides = [
        f"task.teacher_path={teacher}",
        "common.cpu=true",
        "common.log_format=simple",
        "dataset.num_workers=0",
        "dataset.batch_size=4",
        "optimization.max_update=2",
        "dataset.disable_validation=true",
    ]
    log = run(hydra_cmd(setup, save, *overrides, config=name), cwd=tmp_path)
    assert len(train_losses(log)) == 2
    teacher_layers = "1, 7, 13, 19" if name == "vesper4" else ", ".join(map(str, range(1, 24, 2)))
    mapped = re.findall(r"student layer \d+ <- teacher layers \[(\d+)\]", log)
    assert ", ".join(mapped) == teacher_layers


@pytest.mark.slow
def test_checkpoint_reloads_in_fairseq_without_the_teacher_file(setup, tmp_path):
    import shutil

    from fairseq import checkpoint_utils, utils

    teacher = tmp_path / "moved_teacher.pt"
    shutil.copy(setup["teacher"], teacher)
    save = tmp_path / "ckpt"
    hydra_train(setup, save, "optimization.max_update=2", f"task.teacher_path={teacher}")
    teacher.unlink()
    utils.import_user_module(type("Args", (), {"user_dir": str(PLUGIN)}))
    models, cfg, _ = checkpoint_utils.load_model_ensemble_and_task(
        [str(save / "checkpoint_last.pt")], arg_overrides={"data": str(setup["data"])}
    )
    assert cfg.model.student["encoder_layers"] == 2
    assert models[0].encoder.num_layers == 2


@pytest.mark.slow
def test_argparse_fairseq_train_runs_the_plugin_components(setup, tmp_path):
    save = tmp_path / "ckpt"
    cmd = [
        BIN / "fairseq-train",
        setup["data"],
        "--user-dir",
        PLUGIN,
        "--cpu",
        "--task",
        "vesper_pretraining",
        "--teacher-path",
        setup["teacher"],
        "--max-sample-size",
        str(CROP),
        "--arch",
        "vesper",
        "--num-layers",
        "2",
        "--init",
        "uniform_average",
        "--criterion",
        "vesper_distill",
        "--high-weight",
        "0.5",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--max-tokens",
        "192000",
        "--max-update",
        "3",
        "--num-workers",
        "0",
        "--log-format",
        "simple",
        "--log-interval",
        "1",
        "--save-dir",
        save,
    ]
    log = run(cmd, cwd=tmp_path)
    assert len(train_losses(log)) == 3 and "loss_cross=" in log
    state = load_checkpoint(save / "checkpoint_last.pt")
    assert state["cfg"]["model"]["student"]["encoder_layers"] == 2
    assert state["cfg"]["model"]["init"] == "uniform_average"
    assert state["cfg"]["criterion"]["high_weight"] == 0.5


def test_online_teacher_serves_half_precision_batches(setup):
    task = make_task(setup)
    batch = first_batch(task)
    full, _ = task.teacher(batch["net_input"]["source"], batch["net_input"]["padding_mask"], [4])
    half = batch["net_input"]["source"].to(torch.bfloat16)
    targets, _ = task.teacher(half, batch["net_input"]["padding_mask"], [4])
    assert targets[4].dtype == torch.float32 and not targets[4].is_inference()
    # the teacher computes in bf16 too (test_precision.py): bf16 rounding of values up to ~4
    torch.testing.assert_close(targets[4], full[4], rtol=0.05, atol=0.1)
