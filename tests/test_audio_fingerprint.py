"""Outputs made from audio files record the files' bytes: audio rewritten in place (same paths,
same lengths) makes vesper-extract refuse, vesper-dump-teacher redo the shard and the training
task refuse the store; copied or touched files with the same bytes are still the same audio."""

import json
import logging
import os
import re

import pytest
import soundfile as sf
import torch
from fairseq_runs import make_tiny_teacher, write_audio_manifest

from vesper_fairseq import fingerprint
from vesper_fairseq.cli import dump_teacher
from vesper_fairseq.cli import extract as extract_cli
from vesper_fairseq.data.target_store import TeacherTargetStore
from vesper_fairseq.formats.vesper_folder import save_vesper_folder
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

CHANGED = "the contents of the audio files changed (audio_sha256)"


@pytest.fixture
def data(tmp_path):
    return write_audio_manifest(tmp_path / "data", {"train": 3}, seconds=(0.5, 1.0), seed=5)


def rewrite_in_place(data, index: int = 1) -> None:
    """Other samples, same file, same length, same subtype: only the bytes say it changed."""
    path = sorted((data / "audio").glob("*.wav"))[index]
    wav, rate = sf.read(path, dtype="float32")
    sf.write(path, -wav[::-1].copy(), rate)


def touch_all(data) -> None:
    for path in (data / "audio").glob("*.wav"):
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_the_bytes_are_read_only_when_sizes_or_times_changed(data, monkeypatch):
    paths = sorted((data / "audio").glob("*.wav"))
    first = fingerprint.audio_fingerprint(paths)
    reads = []
    real = fingerprint._content_digest
    monkeypatch.setattr(fingerprint, "_content_digest", lambda p: reads.append(p) or real(p))
    assert fingerprint.audio_fingerprint(paths, first) == first
    assert reads == []  # unchanged sizes and times: the recorded digest stands
    touch_all(data)
    touched = fingerprint.audio_fingerprint(paths, first)
    assert len(reads) == 1 and touched["audio_sha256"] == first["audio_sha256"]
    assert touched[fingerprint.AUDIO_STAT] != first[fingerprint.AUDIO_STAT]
    rewrite_in_place(data)
    assert fingerprint.audio_fingerprint(paths, first)["audio_sha256"] != first["audio_sha256"]


def test_a_digest_an_earlier_release_did_not_record_is_named_so():
    diffs = fingerprint.differences({"layers": [1]}, {"layers": [1], "audio_sha256": "ab"})
    assert diffs == ["no audio_sha256 recorded (made by an earlier release)"]


def extract(data, encoder, out, *extra):
    args = ["--encoder", str(encoder), "--out", str(out), "--layers", "1,2"]
    return extract_cli.main(args + ["--manifest", str(data / "train.tsv"), *extra])


def test_extract_refuses_audio_rewritten_in_place_and_keeps_touched_audio(data, tmp_path):
    torch.manual_seed(0)
    encoder = save_vesper_folder(WavLMEncoder(tiny_wavlm_config()).eval(), tmp_path / "enc")
    out = tmp_path / "features"
    extract(data, encoder, out)
    before = (out / "train_0_1.layer2.npy").read_bytes()
    touch_all(data)
    extract(data, encoder, out)  # same bytes: the finished shard stands
    assert (out / "train_0_1.layer2.npy").read_bytes() == before
    rewrite_in_place(data)
    with pytest.raises(SystemExit, match=r"other settings \(" + re.escape(CHANGED)):
        extract(data, encoder, out)
    extract(data, encoder, out, "--overwrite")
    assert (out / "train_0_1.layer2.npy").read_bytes() != before


def dump(data, teacher, out):
    dump_teacher.main([str(data), "--teacher", str(teacher), "--out", str(out)])


def test_dump_teacher_redoes_a_shard_whose_audio_changed(data, tmp_path, caplog):
    teacher = make_tiny_teacher(tmp_path / "teacher.pt", seed=0)
    out = tmp_path / "store"
    dump(data, teacher, out)
    array = out / "train_0_1.layer4.npy"
    before = array.read_bytes()
    rewrite_in_place(data, index=0)
    with caplog.at_level(logging.WARNING):
        dump(data, teacher, out)
    assert f"made from other inputs ({CHANGED}" in caplog.text
    assert array.read_bytes() != before
    recorded = json.loads((out / "train_0_1.done.json").read_text())
    paths = sorted((data / "audio").glob("*.wav"))
    assert recorded["audio_sha256"] == fingerprint.audio_fingerprint(paths)["audio_sha256"]


def test_the_task_refuses_targets_of_audio_that_changed_since(data, tmp_path):
    teacher = make_tiny_teacher(tmp_path / "teacher.pt", seed=0)
    out = tmp_path / "store"
    dump(data, teacher, out)
    store = TeacherTargetStore(out)
    touch_all(data)  # new times, same bytes: the same audio
    assert len(store.split("train", data / "train.tsv")) == 3
    rewrite_in_place(data, index=2)
    with pytest.raises(ValueError, match="audio files of its rows changed after the targets"):
        store.split("train", data / "train.tsv")


def test_a_missing_audio_file_is_named_before_the_store_is_written(data, tmp_path):
    teacher = make_tiny_teacher(tmp_path / "teacher.pt", seed=0)
    missing = sorted((data / "audio").glob("*.wav"))[1]
    missing.unlink()
    with pytest.raises(SystemExit, match=f"{missing}: file not found"):
        dump(data, teacher, tmp_path / "store")
    assert not (tmp_path / "store" / "meta.json").exists()
