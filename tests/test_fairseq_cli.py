"""fairseq's own command lines train with the plugin loaded, reload and resume (CPU)."""

import re

import pytest
from fairseq_runs import BIN, PLUGIN, REPO, checkpoint_updates, run, write_audio_manifest

from vesper_fairseq.cli.fairseq_command import hydra_train_command

CONFIGS = REPO / "tests" / "configs"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_audio_manifest(tmp_path_factory.mktemp("w2v"), {"train": 8, "valid": 2})


def hydra_train(tmp_path, data, *overrides, launcher=None):
    """The tiny wav2vec 2.0 run with the plugin loaded."""
    cmd = hydra_train_command(
        CONFIGS,
        "w2v_tiny",
        tmp_path / "ckpt",
        f"task.data={data}",
        *overrides,
        hydra_dir=tmp_path / "hydra",
        launcher=launcher,
    )
    return run(cmd, cwd=tmp_path)


def test_hydra_train_with_plugin_reloads_and_resumes(tmp_path, data):
    hydra_train(tmp_path, data, "optimization.max_update=4")
    last = tmp_path / "ckpt" / "checkpoint_last.pt"
    assert checkpoint_updates(last) == 4

    from fairseq import checkpoint_utils, utils
    from fairseq.models.wav2vec import Wav2Vec2Model

    utils.import_user_module(type("Args", (), {"user_dir": str(PLUGIN)}))
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(last)])
    assert isinstance(models[0], Wav2Vec2Model)
    assert cfg.common.user_dir == str(PLUGIN)
    assert type(task).__name__ == "AudioPretrainingTask"

    log = hydra_train(tmp_path, data, "optimization.max_update=6")
    assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 4 updates\)", log)
    assert checkpoint_updates(last) == 6


def test_fairseq_train_argparse_with_user_dir(tmp_path, data):
    """It trains, and prints none of Hydra's notices about fairseq's own use of Hydra."""
    save = tmp_path / "ckpt"
    log = run(
        [
            BIN / "fairseq-train",
            data,
            "--user-dir",
            PLUGIN,
            "--cpu",
            "--task",
            "audio_pretraining",
            "--max-sample-size",
            "32000",
            "--arch",
            "wav2vec2",
            "--criterion",
            "wav2vec",
            "--infonce",
            "--log-keys",
            '["prob_perplexity","code_perplexity","temp"]',
            "--loss-weights",
            "[0.1]",
            "--conv-feature-layers",
            "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
            "--encoder-layers",
            "1",
            "--encoder-embed-dim",
            "32",
            "--encoder-ffn-embed-dim",
            "64",
            "--encoder-attention-heads",
            "2",
            "--conv-pos",
            "16",
            "--conv-pos-groups",
            "4",
            "--final-dim",
            "16",
            "--latent-vars",
            "8",
            "--latent-groups",
            "2",
            "--latent-dim",
            "16",
            "--num-negatives",
            "5",
            "--mask-length",
            "5",
            "--optimizer",
            "adam",
            "--lr",
            "0.0005",
            "--batch-size",
            "2",
            "--num-workers",
            "0",
            "--max-update",
            "3",
            "--disable-validation",
            "--save-dir",
            save,
        ],
        cwd=tmp_path,
    )
    assert checkpoint_updates(save / "checkpoint_last.pt") == 3
    notices = re.findall(r".*(?:hydra\.cc|Hydra \d|hydra\.experimental|strict flag).*", log)
    assert not notices, notices


def test_two_process_gloo_training_writes_one_checkpoint(tmp_path, data):
    torchrun = [BIN / "torchrun", "--nproc_per_node=2", "--master_port=29533", "-m"]
    overrides = [
        "distributed_training.distributed_world_size=2",
        "distributed_training.distributed_backend=gloo",
        "distributed_training.ddp_backend=legacy_ddp",
        "optimization.max_epoch=1",
        "optimization.max_update=100",
        "checkpoint.save_interval_updates=0",
    ]
    log = hydra_train(tmp_path, data, *overrides, launcher=[*torchrun, "fairseq_cli.hydra_train"])
    assert "distributed init (rank 0)" in log and "distributed init (rank 1)" in log
    assert "training on 2 devices" in log
    # 8 utterances, 2 per batch per worker: both workers consume data, so one epoch is 2 updates
    assert checkpoint_updates(tmp_path / "ckpt" / "checkpoint_last.pt") == 2
    assert len(re.findall(r"Saved checkpoint .*checkpoint_last\.pt", log)) == 1
