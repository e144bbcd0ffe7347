"""Data preparation never writes a manifest that fails later and never reuses stale audio."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from corpora_fixtures import (
    make_cremad,
    make_iemocap,
    make_meld,
    read_lines,
    read_skipped,
    read_tsv,
    tone,
    write_audio,
)
from test_manifests_cli import audio_folder_cli, cremad_cli, iemocap_cli, meld_cli

from vesper_fairseq.corpora import audio_folder, cremad, iemocap, meld
from vesper_fairseq.corpora.manifest import NOT_REPRESENTABLE, CorpusLayoutError
from vesper_fairseq.data.audio_dataset import CroppedAudioDataset
from vesper_fairseq.data.manifest_file import ManifestError

NO_VALID = audio_folder.AudioFolderConfig(valid_percent=0.0)


def fairseq_reads(tsv: Path) -> list[int]:
    """Loads every row with fairseq's own FileAudioDataset; returns the lengths read."""
    from fairseq.data.audio.raw_audio_dataset import FileAudioDataset

    ds = FileAudioDataset(str(tsv), sample_rate=16000)
    return [len(ds[i]["source"]) for i in range(len(ds))]


def test_replaced_source_with_older_mtime_is_converted_again(tmp_path):
    src = write_audio(tmp_path / "in" / "a.flac", 48000, sr=48000)
    write_audio(tmp_path / "in" / "b.wav", 16000)
    audio_folder.build(tmp_path / "in", tmp_path / "out", NO_VALID)
    assert dict(read_tsv(tmp_path / "out" / "train.tsv")[1])["a.wav"] == 16000
    new = tone(24000, 48000) * 0.5  # another recording, 0.5 s
    sf.write(src, new, 48000)
    os.utime(src, (1_000_000_000, 1_000_000_000))  # older than the cached copy (tar, rsync -t)
    audio_folder.build(tmp_path / "in", tmp_path / "out", NO_VALID)
    expected = soxr.resample(new.mean(axis=1), 48000, 16000, "HQ")
    assert dict(read_tsv(tmp_path / "out" / "train.tsv")[1])["a.wav"] == len(expected)
    cached, sr = sf.read(tmp_path / "out" / "wav16k" / "a.wav", dtype="float32")
    assert sr == 16000 and np.abs(cached - expected).max() < 1e-3


AWKWARD = [
    "tab\there.wav", "new\nline.wav", "cr\rhere.wav", "vt\x0bhere.wav", " leading.wav",
    "trailing .wav", "col:on.WAV", "col:on.wav", "ünïcode.flac", "sub dir/ inner.flac",
    "plain.wav", "upper.WAV", "mixed.Wav", "lower.flac", "upper.FLAC", "mixed.Flac",
]  # fmt: skip
BROKEN = {" leading.wav", "tab\there.wav", "new\nline.wav", "cr\rhere.wav", "vt\x0bhere.wav"}


def test_awkward_names_end_in_exactly_one_place_and_every_row_reads(tmp_path):
    root = tmp_path / "in"
    for i, name in enumerate(AWKWARD):
        write_audio(root / name, 8000 + 16 * i)
    latin1 = write_audio(tmp_path / "latin1.wav", 8000)  # a name that is not UTF-8
    os.rename(os.fsencode(latin1), os.fsencode(root) + b"/latin1-\xe9.wav")
    audio_folder.build(root, tmp_path / "out", audio_folder.AudioFolderConfig(valid_percent=0.3))
    rows = []
    for split in ("train", "valid"):
        tsv_root, got = read_tsv(tmp_path / "out" / f"{split}.tsv")
        assert tsv_root == str(root)  # all 16 kHz mono: used in place
        rows += [rel for rel, _ in got]
        assert fairseq_reads(tmp_path / "out" / f"{split}.tsv") == [n for _, n in got]
    skipped = read_skipped(tmp_path / "out" / "skipped.tsv")
    assert all(r.startswith(NOT_REPRESENTABLE) for r in skipped.values())
    expected_skipped = {ascii(n) if n in BROKEN - {" leading.wav"} else n for n in BROKEN}
    assert set(skipped) == expected_skipped | {"col:on.WAV", ascii("latin1-\udce9.wav")}
    assert sorted(rows) == sorted(set(AWKWARD) - BROKEN - {"col:on.WAV"})
    assert len(rows) + len(skipped) == len(AWKWARD) + 1


def test_cache_root_with_colon_keeps_only_readable_rows(tmp_path):
    root = tmp_path / "in"
    write_audio(root / "conv.flac", 4800, sr=48000)  # needs conversion: the cache is the root
    write_audio(root / "kept.wav", 8000)
    write_audio(root / "linked.WAV", 8000)  # a link named .WAV under a root with ':'
    audio_folder.build(root, tmp_path / "a:b", NO_VALID)
    tsv_root, rows = read_tsv(tmp_path / "a:b" / "train.tsv")
    assert tsv_root == str(tmp_path / "a:b" / "wav16k")
    assert [rel for rel, _ in rows] == ["conv.wav", "kept.wav"]
    assert fairseq_reads(tmp_path / "a:b" / "train.tsv") == [1600, 8000]
    skipped = read_skipped(tmp_path / "a:b" / "skipped.tsv")
    assert skipped["linked.WAV"].startswith(NOT_REPRESENTABLE)


def test_cremad_upper_case_extension_is_a_clip(tmp_path):
    make_cremad(tmp_path / "c", actors=3, per_emo=1)
    audio = tmp_path / "c" / "AudioWAV"
    (audio / "1001_DFA_ANG_XX.wav").rename(audio / "1001_DFA_ANG_HI.WAV")
    write_audio(audio / "1002_DFA_SAD_HI.Wav", 12000)
    cremad.build(tmp_path / "c", tmp_path / "out", cremad.CremadConfig(split="actor"))
    rows = []
    for split in ("train", "valid", "test"):
        rows += [Path(rel).name for rel, _ in read_tsv(tmp_path / "out" / f"{split}.tsv")[1]]
    assert "1001_DFA_ANG_HI.WAV" in rows and "1002_DFA_SAD_HI.Wav" in rows
    skipped = [Path(p).name for p in read_skipped(tmp_path / "out" / "skipped.tsv")]
    seen = {p.name for p in audio.iterdir()}
    assert len(rows) + len(skipped) == len(seen) and set(rows) | set(skipped) == seen


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1
    return err[0]


def test_runs_without_usable_rows_fail_with_one_line(tmp_path, capsys):
    make_cremad(tmp_path / "c", actors=3, per_emo=1)
    for wav in (tmp_path / "c" / "AudioWAV").iterdir():
        wav.write_bytes(b"RIFF\x00\x00garbage")
    assert cremad_cli.main([str(tmp_path / "c"), "--dest", str(tmp_path / "o1")]) == 2
    line = one_error_line(capsys)
    assert "CREMA-D: none of the" in line and "unreadable=" in line
    assert not (tmp_path / "o1" / "train.tsv").exists()

    make_iemocap(tmp_path / "IEMOCAP")
    for wav in (tmp_path / "IEMOCAP" / "Session3" / "sentences").rglob("*.wav"):
        wav.write_bytes(b"")
    assert iemocap_cli.main([str(tmp_path / "IEMOCAP"), "--dest", str(tmp_path / "o2")]) == 2
    line = one_error_line(capsys)
    assert "no usable row for fold3/test.tsv" in line and "empty=" in line
    assert not (tmp_path / "o2" / "fold1").exists()

    make_meld(tmp_path / "meld")
    for clip in (tmp_path / "meld" / "output_repeated_splits_test").iterdir():
        clip.write_bytes(b"")
    assert meld_cli.main([str(tmp_path / "meld"), "--dest", str(tmp_path / "o3")]) == 2
    assert "no usable row for test.tsv" in one_error_line(capsys)


@pytest.mark.parametrize(
    "option",
    [["--valid-percent", "1.5"], ["--valid-percent", "-1"], ["--valid-percent", "1"],
     ["--ext", ""], ["--ext", " , "], ["--min-samples", "0"]],
)  # fmt: skip
def test_options_are_range_checked_before_any_work(option, tmp_path, capsys):
    write_audio(tmp_path / "in" / "a.wav", 16000)
    with pytest.raises(SystemExit) as exc:
        audio_folder_cli.main([str(tmp_path / "in"), "--dest", str(tmp_path / "out"), *option])
    assert exc.value.code == 2 and f"argument {option[0]}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"valid_percent must be in \[0, 1\)"):
        audio_folder.AudioFolderConfig(valid_percent=1.5)


def test_meld_csv_errors_name_file_and_line(tmp_path, capsys):
    make_meld(tmp_path / "m")
    csv_path = tmp_path / "m" / "dev_sent_emo.csv"
    lines = read_lines(csv_path)
    lines[2] += ",an extra field"
    csv_path.write_text("\n".join(lines) + "\n")
    clip = tmp_path / "m" / "train_splits" / "dia0_utt0.mp4"
    clip.rename(clip.with_suffix(".MP4"))  # found whatever the case of its extension
    utts, skipped = meld.scan(tmp_path / "m")
    assert clip.with_suffix(".MP4") in [u.src for u in utts["train"]]
    reasons = {s.path: s.reason for s in skipped}
    expected = "bad-row: 12 fields where the header has 11 in dev_sent_emo.csv line 3"
    assert reasons["dev_sent_emo.csv:3"] == expected
    csv_path.write_text("\n".join(lines) + '\n4,"unclosed,Ross,anger\n')
    assert meld_cli.main([str(tmp_path / "m"), "--dest", str(tmp_path / "out")]) == 2
    line = one_error_line(capsys)
    assert f"{csv_path}, line 5:" in line and "quoted field closed" in line


def test_iemocap_bad_label_line_is_named_and_upper_case_wav_found(tmp_path):
    make_iemocap(tmp_path)
    rel = "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt"
    n = len(read_lines(tmp_path / rel))
    with open(tmp_path / rel, "a") as f:
        f.write("[10.0100 - 11.3925]\tSes01F_impro01_M009\tang\n")  # no [V, A, D]
    wav = tmp_path / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M001.wav"
    wav.rename(wav.with_suffix(".WAV"))
    utts, skipped = iemocap.scan(tmp_path, iemocap.IemocapConfig())
    assert wav.with_suffix(".WAV") in [u.src for u in utts]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons[f"{rel}:{n + 1}"] == (
        f"bad-line: {rel} line {n + 1}: expected '[START - END]<TAB>TURN_NAME<TAB>EMOTION"
        "<TAB>[V, A, D]'"
    )


def test_dataset_names_file_and_line_of_bad_rows(tmp_path):
    write_audio(tmp_path / "a.wav", 16000)
    write_audio(tmp_path / "b.wav", 8000, sr=8000)
    tsv = tmp_path / "blank.tsv"
    tsv.write_text(f"{tmp_path}\na.wav\t16000\n\nb.wav\t8000\n")
    with pytest.raises(ManifestError, match=rf"{re.escape(str(tsv))}, line 3: blank line; exp"):
        CroppedAudioDataset(str(tsv), sample_rate=16000)
    tsv.write_text(f"{tmp_path}\na.wav\t16000\nb.wav\t8000\n")
    ds = CroppedAudioDataset(str(tsv), sample_rate=16000)
    assert len(ds[0]["source"]) == 16000
    where = re.escape(f"{tmp_path}/b.wav (line 3 of {tsv}): sample rate: 8000")
    with pytest.raises(ManifestError, match=where):
        ds[1]


def test_dest_left_by_another_run_is_replaced_or_refused(tmp_path):
    make_cremad(tmp_path / "c", actors=3, per_emo=1)
    write_audio(tmp_path / "in" / "a.wav", 16000)
    write_audio(tmp_path / "in" / "b.wav", 16000)
    cremad.build(tmp_path / "c", tmp_path / "out", cremad.CremadConfig(split="actor"))
    audio_folder.build(tmp_path / "in", tmp_path / "out")
    left = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_file())
    assert left == ["manifests.json", "skipped.tsv", "train.tsv", "valid.tsv"]
    (tmp_path / "out" / "fold9").mkdir()
    (tmp_path / "out" / "fold9" / "test.tsv").write_text("/x\n")  # not from these scripts
    with pytest.raises(CorpusLayoutError, match="holds fold9/test.tsv.*another --dest"):
        audio_folder.build(tmp_path / "in", tmp_path / "out")


def test_a_full_disk_while_copying_into_the_cache_names_the_file(tmp_path, monkeypatch, capsys):
    """Where links are impossible, a kept file is copied into the cache: a full disk names it."""
    import errno
    import shutil

    write_audio(tmp_path / "in" / "conv.flac", 4800, sr=48000)  # the cache becomes the root
    write_audio(tmp_path / "in" / "kept.wav", 8000)

    def no_links(*args):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "symlink", no_links)
    monkeypatch.setattr(shutil, "copyfile", disk_full)
    dest = tmp_path / "out"
    assert audio_folder_cli.main([str(tmp_path / "in"), "--dest", str(dest)]) == 2
    err = capsys.readouterr().err
    assert f"{dest / 'wav16k' / 'kept.wav'} could not be written: No space left" in err
    assert "Traceback" not in err and not (dest / "train.tsv").exists()
