"""vesper-dump-teacher --with-features: the frozen CNN's output stored beside the targets and fed
to the student, which then skips its CNN."""

import pytest
import torch
from fairseq_runs import REPO, make_tiny_teacher, run, train_losses, write_audio_manifest
from omegaconf import OmegaConf

from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.cli.fairseq_command import hydra_train_command
from vesper_fairseq.models.vesper import VesperConfig, VesperModel
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

CROP = 24000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    data = write_audio_manifest(root / "data", {"train": 6}, seconds=(0.6, 2.0))
    teacher = make_tiny_teacher(root / "teacher.pt")
    args = [str(data), "--teacher", str(teacher), "--max-sample-size", str(CROP)]
    dump_teacher.main(args + ["--out", str(root / "store"), "--with-features"])
    return {"data": data, "teacher": teacher, "store": root / "store", "args": args}


def _task(setup, **overrides):
    cfg = dict(data=str(setup["data"]), teacher_path=str(setup["teacher"]), seed=1)
    cfg.update(max_sample_size=CROP, target_store=str(setup["store"]), **overrides)
    return VesperPretrainingTask(OmegaConf.structured(VesperPretrainingConfig(**cfg)))


def _batch(task):
    task.load_dataset("train")
    dataset = task.dataset("train")
    return dataset.collater([dataset[i] for i in range(4)])


def _model(task, **overrides):
    cfg = VesperConfig(
        teacher_path=str(task.cfg.teacher_path), num_layers=2, mask_seed=1, **overrides
    )
    return VesperModel.build_model(OmegaConf.structured(cfg), task).eval()


def test_stored_features_are_the_cnn_output_and_give_the_same_student_outputs(setup):
    task = _task(setup)
    batch = _batch(task)
    net_input = batch["net_input"]
    stored = net_input["features"]
    model = _model(task)
    padding = net_input["padding_mask"]
    assert padding.any()  # a padded batch
    with torch.no_grad():
        computed = model.encoder.cnn_features(net_input["source"], padding, normalize=False)
        frames = model.encoder.frame_padding_mask(padding, computed.size(1))
        real = ~frames
        assert stored.dtype == torch.float32 and stored.shape == computed.shape
        torch.testing.assert_close(stored[real], computed[real].half().float())
        assert not stored[frames].any()

        stage1, stage2 = model.compute_masks(net_input["source"], padding)
        net_input = dict(net_input, stage1_mask=stage1, stage2_mask=stage2)
        assert stage1.any() and stage2.any()
        with_stored = model(**net_input)
        without = {k: v for k, v in net_input.items() if k != "features"}
        rounded = model(**without, features=computed.half().float())
        recomputed = model(**without)
    for head, prediction in with_stored["predictions"].items():
        # exactly what the student gives on the float16-rounded CNN output ...
        torch.testing.assert_close(prediction[real], rounded["predictions"][head][real])
        # ... which is its usual output within float16 rounding
        torch.testing.assert_close(
            prediction[real], recomputed["predictions"][head][real], rtol=1e-2, atol=1e-2
        )


def test_features_follow_the_switches(setup, tmp_path):
    assert "features" not in _batch(_task(setup, stored_features=False))["net_input"]
    task = _task(setup)
    batch = _batch(task)
    model = _model(task, freeze_feature_extractor=False)
    with pytest.raises(ValueError, match="frozen CNN only"):
        model(**batch["net_input"])
    # a rerun without --with-features is another store: refused, nothing recomputed
    with pytest.raises(SystemExit, match="other settings.*features"):
        dump_teacher.main(setup["args"] + ["--out", str(setup["store"])])


def test_stored_features_must_match_the_source():
    from vesper_fairseq.modules.wavlm import WavLMEncoder
    from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

    encoder = WavLMEncoder(tiny_wavlm_config(encoder_layers=1)).eval()
    with pytest.raises(ValueError, match="features must be the CNN output"):
        encoder(torch.zeros(1, 3200), features=torch.zeros(1, 5, 32))


@pytest.mark.slow
def test_fairseq_bf16_run_from_stored_targets_and_features(setup, tmp_path):
    """fairseq allows bf16 on a CPU (fp16 needs CUDA): two updates from the store's features."""
    save = tmp_path / "ckpt"
    cmd = hydra_train_command(
        REPO / "examples" / "pretraining",
        "tiny",
        save,
        f"task.data={setup['data']}",
        f"task.teacher_path={setup['teacher']}",
        f"task.target_store={setup['store']}",
        f"task.max_sample_size={CROP}",
        "dataset.valid_subset=train",
        "common.bf16=true",
        "common.log_interval=1",
        "optimization.max_update=2",
    )
    losses = train_losses(run(cmd, cwd=tmp_path))
    assert len(losses) == 2 and all(0 < loss < 100 for loss in losses)
