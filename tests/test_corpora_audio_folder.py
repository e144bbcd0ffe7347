import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from corpora_fixtures import (
    output_bytes,
    read_lines,
    read_skipped,
    read_tsv,
    snapshot,
    tone,
    write_audio,
)

from vesper_fairseq.corpora import audio_folder, lssed
from vesper_fairseq.corpora.manifest import CorpusLayoutError


@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "corpus"
    write_audio(root / "a" / "x.wav", 16000)
    write_audio(root / "a" / "y.flac", 44100, sr=44100, channels=2)
    write_audio(root / "b" / "z.WAV", 8000)
    write_audio(root / "b" / "deep" / "w.flac", 24000)
    write_audio(root / ".hidden" / "h.wav", 8000)
    (root / "c").mkdir()
    (root / "c" / "readme.txt").write_text("not audio")
    (root / "c" / "bad.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    sf.write(root / "c" / "zero.wav", np.zeros(0, np.float32), 16000)
    write_audio(root / "c" / "short.wav", 200)
    sf.write(root / "c" / "silent.flac", np.zeros(8000, np.float32), 16000)
    return root


def test_audio_folder_converts_into_one_root(folder, tmp_path):
    dest = tmp_path / "out"
    before = snapshot(folder)
    cfg = audio_folder.AudioFolderConfig(valid_percent=0.3, seed=5)
    summary = audio_folder.build(folder, dest, cfg)
    cache = dest / "wav16k"
    rows = {}
    for split in ["train", "valid"]:
        root, got = read_tsv(dest / f"{split}.tsv")
        assert root == str(cache)
        rows.update(got)
        assert not (dest / f"{split}.emo").exists() and not (dest / f"{split}.spk").exists()
    expected_y = len(soxr.resample(tone(44100, 44100, 2).mean(axis=1), 44100, 16000, "HQ"))
    assert rows == {
        "a/x.wav": 16000,
        "a/y.wav": expected_y,
        "b/z.WAV": 8000,
        "b/deep/w.flac": 24000,
    }
    assert os.readlink(cache / "a/x.wav") == str(folder / "a/x.wav")
    assert not os.path.islink(cache / "a/y.wav")
    info = sf.info(cache / "a/y.wav")
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, expected_y)
    assert read_skipped(dest / "skipped.tsv").keys() == {
        "c/bad.wav",
        "c/zero.wav",
        "c/short.wav",
        "c/silent.flac",
    }
    assert not (dest / "dict.emo.txt").exists()
    assert snapshot(folder) == before
    assert "skipped:      4" in summary


def test_audio_folder_manifest_loads_in_fairseq(folder, tmp_path):
    from fairseq.data.audio.raw_audio_dataset import FileAudioDataset

    audio_folder.build(folder, tmp_path, audio_folder.AudioFolderConfig(valid_percent=0.0))
    ds = FileAudioDataset(str(tmp_path / "train.tsv"), sample_rate=16000)
    assert len(ds) == 4
    for i in range(4):
        item = ds[i]
        assert item["source"].ndim == 1 and len(item["source"]) == ds.sizes[i]


def test_audio_folder_rerun_reuses_cache_and_is_identical(folder, tmp_path):
    audio_folder.build(folder, tmp_path)
    first = output_bytes(tmp_path)
    stamp = (tmp_path / "wav16k/a/y.wav").stat().st_mtime_ns
    audio_folder.build(folder, tmp_path)
    assert output_bytes(tmp_path) == first
    assert (tmp_path / "wav16k/a/y.wav").stat().st_mtime_ns == stamp


def test_audio_folder_extension_filter_and_corpus_root(folder, tmp_path):
    cfg = audio_folder.AudioFolderConfig(exts=("wav",), valid_percent=0.0)
    audio_folder.build(folder, tmp_path, cfg)
    root, rows = read_tsv(tmp_path / "train.tsv")
    assert root == str(folder)  # nothing needed conversion: the corpus is the root
    assert [rel for rel, _ in rows] == ["a/x.wav", "b/z.WAV"]
    assert read_lines(tmp_path / "valid.tsv") == [str(folder)]


def test_audio_folder_without_audio_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusLayoutError, match="no audio file with extension wav, flac"):
        audio_folder.build(tmp_path / "empty", tmp_path / "out")


def make_lssed(root: Path, header: str, value, speaker_col: bool = True) -> None:
    for i in range(6):
        write_audio(root / "audio" / f"{i // 3:02d}" / f"utt{i:04d}.wav", 8000 + i)
    write_audio(root / "audio" / "extra.wav", 8000)  # not in the metadata: ignored
    lines = [header]
    for i in range(6):
        lines.append(f"{value(i)},{'ang,' if speaker_col else ''}spk{i % 2}")
    lines.append(f"{value(1)},{'ang,' if speaker_col else ''}spk1")  # duplicate row
    lines.append(f"{value(9)},{'ang,' if speaker_col else ''}spk1")  # names a missing file
    root.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


def test_lssed_named_columns_and_stems(tmp_path):
    root = tmp_path / "LSSED"
    make_lssed(root, "filename,emotion,speaker", lambda i: f"utt{i:04d}")
    summary = lssed.build(root, tmp_path / "out", lssed.LssedConfig(valid_percent=0.0))
    tsv_root, rows = read_tsv(tmp_path / "out" / "train.tsv")
    assert tsv_root == str(root)
    assert [rel for rel, _ in rows] == [f"audio/{i // 3:02d}/utt{i:04d}.wav" for i in range(6)]
    assert [n for _, n in rows] == [8000 + i for i in range(6)]
    assert read_lines(tmp_path / "out" / "train.spk") == [f"spk{i % 2}" for i in range(6)]
    skipped = read_skipped(tmp_path / "out" / "skipped.tsv")
    assert skipped["audio/00/utt0001.wav"].startswith("duplicate: named again")
    assert skipped["utt0009"].startswith("missing: no audio file for 'utt0009'")
    assert "1 audio files under ROOT not named" in summary


def test_lssed_unknown_columns_found_by_their_values(tmp_path):
    root = tmp_path / "LSSED"
    make_lssed(root, "clip,who", lambda i: f"audio/{i // 3:02d}/utt{i:04d}.wav", False)
    lssed.build(root, tmp_path / "out", lssed.LssedConfig(valid_percent=0.0))
    assert len(read_tsv(tmp_path / "out" / "train.tsv")[1]) == 6
    assert not (tmp_path / "out" / "train.spk").exists()


def test_lssed_metadata_must_be_unambiguous(tmp_path):
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "b.csv").write_text("x\n")
    with pytest.raises(CorpusLayoutError, match="several: a.csv, b.csv.*--metadata"):
        lssed.build(tmp_path, tmp_path / "out")
    (tmp_path / "bare").mkdir()
    with pytest.raises(CorpusLayoutError, match="does not look like LSSED.*found no csv"):
        lssed.build(tmp_path / "bare", tmp_path / "out")
