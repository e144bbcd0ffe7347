"""vesper-dump-teacher and the target store: options checked before anything is written, stores
that record their teacher and settings and refuse to be mixed, shard locks."""

import errno
import json
import logging
import os
import re
import shutil
import subprocess

import pytest
from fairseq_runs import make_tiny_teacher, write_audio_manifest
from omegaconf import OmegaConf

from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.data import layer_arrays
from vesper_fairseq.models.vesper import VesperConfig, VesperModel
from vesper_fairseq.tasks.vesper_pretraining import VesperPretrainingConfig, VesperPretrainingTask

CROP = 16000


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    data = write_audio_manifest(root / "data", {"train": 4}, seconds=(0.5, 1.0))
    return {
        "root": root,
        "data": data,
        "a": make_tiny_teacher(root / "a.pt", seed=0),
        "b": make_tiny_teacher(root / "b.pt", seed=1),  # same shape, other weights
        "wide": make_tiny_teacher(root / "wide.pt", seed=0, encoder_embed_dim=96),
        # GroupNorm CNN: a frame's targets depend on which rows share its batch (padding)
        "gn": make_tiny_teacher(root / "gn.pt", seed=0, extractor_mode="default"),
    }


def dump(data, teacher, out, *extra):
    argv = [str(data), "--teacher", str(teacher), "--out", str(out)]
    dump_teacher.main(argv + ["--max-sample-size", str(CROP), "--batch-size", "4", *extra])


def task_with_store(inputs, store, teacher):
    cfg = VesperPretrainingConfig(
        data=str(inputs["data"]),
        teacher_path=str(teacher),
        target_store=str(store),
        max_sample_size=CROP,
        seed=1,
    )
    return VesperPretrainingTask(OmegaConf.structured(cfg))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layers", "2,9"], "the teacher has layers 1..4"),
        (["--layers", "2,x"], "--layers must be integers"),
        (["--max-sample-size", "100"], "no row gives a teacher frame .* needs 400 samples"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--shard", "2", "--num-shards", "2"], r"--shard 2 is not in \[0, --num-shards 2\)"),
    ],
)
def test_bad_options_write_nothing_and_the_corrected_run_works(
    inputs, tmp_path, capsys, extra, message
):
    out = tmp_path / "store"
    with pytest.raises(SystemExit) as e:
        dump(inputs["data"], inputs["a"], out, *extra)
    assert e.value.code != 0
    assert re.search(message, str(e.value.code) + capsys.readouterr().err)
    assert not out.exists()
    if extra[0] == "--layers":  # nothing recorded the refused settings: a corrected run works
        dump(inputs["data"], inputs["a"], out, "--layers", "2,4")
        assert json.loads((out / "meta.json").read_text())["layers"] == [2, 4]


def test_another_teacher_is_refused_until_overwrite(inputs, tmp_path):
    out = tmp_path / "store"
    dump(inputs["data"], inputs["a"], out)
    with pytest.raises(SystemExit, match="teacher_fingerprint: .*--overwrite"):
        dump(inputs["data"], inputs["b"], out)
    dump(inputs["data"], inputs["b"], out, "--overwrite")
    task = task_with_store(inputs, out, inputs["b"])
    VesperModel._teacher(VesperConfig(teacher_path=str(inputs["b"])), task)
    task.load_dataset("train")


def test_overwrite_shards_run_one_after_another_all_stay(inputs, tmp_path):
    """The README loop with --overwrite: shard 1 must not remove shard 0 of the same run."""
    out = tmp_path / "store"
    for teacher in ("a", "b"):
        for shard in ("0", "1"):
            dump(inputs["data"], inputs[teacher], out, "--shard", shard, "--num-shards", "2",
                 "--overwrite")  # fmt: skip
    task = task_with_store(inputs, out, inputs["b"])
    VesperModel._teacher(VesperConfig(teacher_path=str(inputs["b"])), task)
    task.load_dataset("train")  # both shards, both from teacher b


def test_overwrite_does_not_remove_a_shard_being_written(inputs, tmp_path):
    out = tmp_path / "store"
    dump(inputs["data"], inputs["a"], out, "--shard", "0", "--num-shards", "2")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    holder = subprocess.Popen(["sleep", "60"])
    try:  # a live process writes shard 1 of the store
        lock = out / "train_1_2.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        with pytest.raises(SystemExit, match=f"start the store over while process {holder.pid}"):
            dump(inputs["data"], inputs["b"], out, "--shard", "0", "--num-shards", "2",
                 "--overwrite")  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    lock.unlink()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_changed_manifest_redoes_the_shard(inputs, tmp_path, caplog):
    data = tmp_path / "data"
    shutil.copytree(inputs["data"], data)
    out = tmp_path / "store"
    dump(data, inputs["a"], out)
    lines = (data / "train.tsv").read_text().splitlines()
    (data / "train.tsv").write_text("\n".join(lines[:-1]) + "\n")  # one row less
    with caplog.at_level(logging.WARNING):
        dump(data, inputs["a"], out)
    assert "made from other inputs (the manifest changed" in caplog.text
    done = json.loads((out / "train_0_1.done.json").read_text())
    assert done["rows"] == [0, len(lines) - 2]


@pytest.mark.parametrize(
    "teacher, message",
    [("b", r"computed by teacher .*a\.pt .*task.teacher_path .*b\.pt has other weights"),
     ("wide", r"64-wide teacher \(.*a\.pt\), but task.teacher_path .*wide\.pt is 96 wide")],
)  # fmt: skip
def test_task_refuses_a_store_of_another_teacher(inputs, tmp_path, teacher, message):
    out = tmp_path / "store"
    dump(inputs["data"], inputs["a"], out)
    task = task_with_store(inputs, out, inputs[teacher])
    cfg = OmegaConf.structured(VesperConfig(teacher_path=str(inputs[teacher])))
    with pytest.raises(ValueError, match=message):
        VesperModel.build_model(cfg, task)


def test_task_refuses_shards_of_two_runs(inputs, tmp_path):
    stores = {"a": tmp_path / "a", "b": tmp_path / "b"}
    for name, shard in (("a", "0"), ("a", "1"), ("b", "1")):
        dump(inputs["data"], inputs[name], stores[name], "--shard", shard, "--num-shards", "2")
    for path in stores["b"].glob("train_1_2.*"):
        shutil.copy(path, stores["a"] / path.name)  # shard 1 now comes from teacher b
    task = task_with_store(inputs, stores["a"], inputs["a"])
    with pytest.raises(ValueError, match=r"train_1_2.done.json was made with other settings"):
        task.load_dataset("train")


def test_a_live_lock_stops_a_second_writer_and_a_stale_one_does_not(inputs, tmp_path):
    out = tmp_path / "store"
    out.mkdir()
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = out / "train_0_1.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        with pytest.raises(SystemExit, match=f"being written by process {holder.pid}"):
            dump(inputs["data"], inputs["a"], out)
        assert not (out / "train_0_1.done.json").exists()
    finally:
        holder.kill()
        holder.wait()
    dump(inputs["data"], inputs["a"], out)  # the holder is dead: its lock is stale
    assert (out / "train_0_1.done.json").exists() and not lock.exists()


def test_killed_dump_resumes_after_its_last_saved_batch(inputs, tmp_path, monkeypatch):
    args = ["--layers", "2,4", "--batch-size", "2"]
    dump(inputs["data"], inputs["gn"], tmp_path / "fresh", *args)
    real_batch, calls = dump_teacher._dump_batch, []

    def dying_batch(*a, **k):
        calls.append(a[3])  # the rows of the batch
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed in the second batch, one saved
        return real_batch(*a, **k)

    monkeypatch.setattr(dump_teacher, "SAVE_EVERY", 0.0)
    monkeypatch.setattr(dump_teacher, "_dump_batch", dying_batch)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        dump(inputs["data"], inputs["gn"], out, *args)
    assert not (out / "train_0_1.done.json").exists() and (out / "train_0_1.partial").is_dir()
    calls.clear()
    dump(inputs["data"], inputs["gn"], out, *args)
    assert calls == [[2, 3]]  # rows 0 and 1 were kept; the resumed batch is the same one
    assert not (out / "train_0_1.partial").exists()
    for name in ("train_0_1.layer2.npy", "train_0_1.layer4.npy", "train_0_1.len"):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()


def test_a_full_disk_names_the_file_and_keeps_finished_shards(inputs, tmp_path, monkeypatch):
    out = tmp_path / "store"
    dump(inputs["data"], inputs["a"], out, "--shard", "0", "--num-shards", "2")
    finished = {p.name: p.read_bytes() for p in out.glob("train_0_2.*")}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(layer_arrays.np.lib.format, "open_memmap", disk_full)
    with pytest.raises(SystemExit, match=r"train_1_2.partial/layer2.npy could not be written: No"):
        dump(inputs["data"], inputs["a"], out, "--shard", "1", "--num-shards", "2")
    assert finished == {p.name: p.read_bytes() for p in out.glob("train_0_2.*")}
    assert not (out / "train_1_2.done.json").exists()


def test_a_shard_of_no_rows_reads_back_quietly(inputs, tmp_path, recwarn):
    """4 rows in 5 shards: one holds none (an empty .len), and the store still loads."""
    out = tmp_path / "store5"
    for shard in range(5):
        dump(inputs["data"], inputs["a"], out, "--shard", str(shard), "--num-shards", "5")
    empty = [s for s in range(5) if not layer_arrays.read_lengths(out / f"train_{s}_5").size]
    assert empty
    task = task_with_store(inputs, out, inputs["a"])
    task.load_dataset("train")
    assert len(task.dataset("train")) == 4
    assert not [w for w in recwarn if "no data" in str(w.message)]
