"""The authors' pretraining recipes, and the plugin through fairseq's two command lines."""

import re
import shutil

import pytest
from fairseq_runs import (
    BIN,
    PLUGIN,
    REPO,
    make_tiny_teacher,
    pretrain_command,
    run,
    train_losses,
    write_audio_manifest,
)
from omegaconf import OmegaConf

from vesper_fairseq.safe_load import load_checkpoint

CONFIGS = REPO / "examples" / "pretraining"
CROP = 48000  # tiny.yaml's task.max_sample_size


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain_recipes")
    data = write_audio_manifest(root / "data", {"train": 16, "valid": 4}, seconds=(0.6, 4.0))
    return {"data": data, "teacher": make_tiny_teacher(root / "teacher.pt")}


def hydra_cmd(setup, save_dir, *overrides, **kwargs) -> list:
    return pretrain_command(setup["data"], setup["teacher"], save_dir, *overrides, **kwargs)


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
    from fairseq import checkpoint_utils, utils

    teacher = tmp_path / "moved_teacher.pt"
    shutil.copy(setup["teacher"], teacher)
    save = tmp_path / "ckpt"
    run(
        hydra_cmd(setup, save, "optimization.max_update=2", f"task.teacher_path={teacher}"),
        tmp_path,
    )
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
