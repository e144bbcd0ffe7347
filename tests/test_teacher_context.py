"""The authors' whole-file targets: vesper-dump-teacher --teacher-max-sample-size N runs the
teacher on the first N samples of each file (standardised over them) and keeps the frames of
the student's crop; the task reads such a store only when it asks for the same N."""

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from fairseq_runs import make_tiny_teacher, write_audio_manifest
from omegaconf import OmegaConf

from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.data.manifest_file import read_manifest
from vesper_fairseq.data.target_store import TeacherTargetStore
from vesper_fairseq.formats import load_encoder
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

CROP, CONTEXT = 24000, 40000  # 1.5 s crops; the teacher sees up to 2.5 s


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("context")
    data = write_audio_manifest(root / "data", {"train": 6}, seconds=(0.6, 3.5), seed=5)
    teacher = make_tiny_teacher(root / "teacher.pt")
    args = [str(data), "--teacher", str(teacher), "--max-sample-size", str(CROP)]
    args += ["--with-features", "--batch-size", "4"]
    dump_teacher.main(args + ["--out", str(root / "crop")])
    dump_teacher.main(args + ["--out", str(root / "file"), "--teacher-max-sample-size", "40000"])
    return {"data": data, "teacher": teacher, "root": root, "args": args}


def rows(store, data):
    split = TeacherTargetStore(store).split("train", data / "train.tsv")
    return [split[i] for i in range(len(split))]


def test_targets_are_the_teachers_outputs_on_the_start_of_the_file(setup):
    teacher = load_encoder(setup["teacher"]).eval()
    folder, manifest = read_manifest(setup["data"] / "train.tsv")
    whole = rows(setup["root"] / "file", setup["data"])
    cropped = rows(setup["root"] / "crop", setup["data"])
    longer = 0
    for (name, size), ours, crop_only in zip(manifest, whole, cropped):
        wav, _ = sf.read(f"{folder}/{name}", dtype="float32")
        start = torch.from_numpy(wav[:CONTEXT])[None]
        with torch.no_grad():
            out = teacher(F.layer_norm(start, start.shape[-1:], eps=1e-5), normalize=False)
        frames = 1 + (min(size, CROP) - 400) // 320
        for layer in (2, 4):
            assert ours[layer].shape == (frames, 64)
            expected = out.layer_results[layer][0, :frames].numpy()
            np.testing.assert_allclose(ours[layer], expected, atol=2e-3, rtol=2e-3)
        # the stored CNN features stay the crop's: the student's own input
        np.testing.assert_array_equal(ours["features"], crop_only["features"])
        if size > CROP:  # the longer context changes the targets of the crop's frames
            longer += 1
            assert np.abs(ours[4].astype(np.float32) - crop_only[4]).max() > 1e-2
        else:
            np.testing.assert_allclose(ours[4], crop_only[4], atol=2e-3, rtol=2e-3)
    assert 0 < longer < len(manifest)


def task(setup, store, **overrides):
    cfg = dict(data=str(setup["data"]), teacher_path=str(setup["teacher"]), seed=1)
    cfg.update(max_sample_size=CROP, target_store=store, **overrides)
    return VesperPretrainingTask(OmegaConf.structured(VesperPretrainingConfig(**cfg)))


def test_the_task_reads_whole_file_targets_only_when_it_asks_for_them(setup):
    root = setup["root"]
    with pytest.raises(ValueError, match="teacher_max_sample_size=40000"):
        task(setup, str(root / "file")).load_dataset("train")
    with pytest.raises(ValueError, match="teacher_max_sample_size=40000"):
        task(setup, str(root / "crop"), teacher_max_sample_size=CONTEXT).load_dataset("train")
    asked = task(setup, str(root / "file"), teacher_max_sample_size=CONTEXT)
    asked.load_dataset("train")
    sample = asked.dataset("train")[0]
    assert sample["stored_layers"][4].shape[-1] == 64
    with pytest.raises(ValueError, match="offline only"):
        task(setup, None, teacher_max_sample_size=CONTEXT)


def test_a_rerun_with_another_teacher_context_is_refused(setup, capsys):
    out = ["--out", str(setup["root"] / "crop")]
    with pytest.raises(SystemExit, match="other settings.*teacher_max_sample_size"):
        dump_teacher.main(setup["args"] + out + ["--teacher-max-sample-size", "48000"])
    with pytest.raises(SystemExit) as e:
        dump_teacher.main(setup["args"] + out + ["--teacher-max-sample-size", "8000"])
    assert e.value.code == 2
    assert "must be 0 or at least --max-sample-size 24000" in capsys.readouterr().err
