import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpora_fixtures import (
    MELD_DIRS,
    MELD_ROWS,
    make_meld,
    output_bytes,
    read_lines,
    read_skipped,
    read_tsv,
    snapshot,
)

from vesper_fairseq.corpora.manifest import CorpusLayoutError
from vesper_fairseq.corpora.meld import CLASSES, build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("MELD.Raw")
    make_meld(root)
    return root


def test_splits_labels_speakers_and_decoded_audio(corpus, tmp_path):
    before = snapshot(corpus)
    summary = build(corpus, tmp_path)
    cache = tmp_path / "wav16k"
    for split, rows in MELD_ROWS.items():
        tsv_root, got = read_tsv(tmp_path / f"{split}.tsv")
        assert tsv_root == str(cache)  # mp4 had to be decoded: one root, the cache
        folder = MELD_DIRS[split][1]
        kept = sorted(
            (f"{folder}/dia{d}_utt{u}.wav", emo, spk)
            for d, u, spk, emo, kind in rows
            if kind in ("mp4", "wav")
        )
        assert [rel for rel, _ in got] == [rel for rel, _, _ in kept]
        assert read_lines(tmp_path / f"{split}.emo") == [e for _, e, _ in kept]
        assert read_lines(tmp_path / f"{split}.spk") == [s for _, _, s in kept]
        for rel, n in got:
            info = sf.info(cache / rel)
            assert (info.samplerate, info.channels, info.frames) == (16000, 1, n)
    # 48 kHz stereo AAC of 24000 samples -> about 8000 samples at 16 kHz (plus codec padding)
    _, train = read_tsv(tmp_path / "train.tsv")
    n = dict(train)["train_splits/dia0_utt0.wav"]
    assert 8000 <= n <= 8000 + 2048 // 3 + 16
    wav, _ = sf.read(cache / "train_splits/dia0_utt0.wav")
    assert np.abs(wav).max() > 0.1
    # the already-extracted 16 kHz wav is linked into the cache, not converted
    assert os.path.islink(cache / "train_splits/dia0_utt2.wav")
    assert read_lines(tmp_path / "dict.emo.txt") == [
        f"{c} {1 if c in ('neutral', 'surprise', 'joy', 'anger', 'disgust') else 0}"
        for c in CLASSES
    ]
    skipped = read_skipped(tmp_path / "skipped.tsv")
    assert {p: r.split(":")[0] for p, r in skipped.items()} == {
        "train_splits/dia1_utt1.mp4": "silent",
        "train_splits/dia2_utt1.mp4": "empty",
        "dev_splits_complete/dia1_utt2.mp4": "missing",
        "output_repeated_splits_test/dia0_utt1.mp4": "no-audio",
    }
    assert "dev_sent_emo.csv line 4" in skipped["dev_splits_complete/dia1_utt2.mp4"]
    assert "final_videos" not in (tmp_path / "test.tsv").read_text()
    assert snapshot(corpus) == before
    assert "skipped:      4" in summary


def test_rerun_reuses_the_cache(corpus, tmp_path):
    build(corpus, tmp_path)
    first = output_bytes(tmp_path)
    clip = tmp_path / "wav16k/train_splits/dia0_utt0.wav"
    stamp = clip.stat().st_mtime_ns
    build(corpus, tmp_path)
    assert output_bytes(tmp_path) == first
    assert clip.stat().st_mtime_ns == stamp


def test_missing_csv_or_folder_is_one_clear_error(corpus, tmp_path):
    (tmp_path / "train_sent_emo.csv").write_text((corpus / "train_sent_emo.csv").read_text())
    with pytest.raises(CorpusLayoutError, match="dev_sent_emo.csv.*output_repeated_splits_test"):
        build(tmp_path, tmp_path / "out")


def test_missing_column_is_named(corpus, tmp_path):
    root = tmp_path / "meld"
    root.mkdir()
    for csv_name, folder in MELD_DIRS.values():
        text = (corpus / csv_name).read_text().replace("Dialogue_ID", "Dialog")
        (root / csv_name).write_text(text)
        (root / folder).mkdir()
    with pytest.raises(CorpusLayoutError, match="missing column.*Dialogue_ID"):
        build(root, tmp_path / "out")


def test_clip_folders_one_level_down(corpus, tmp_path):
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    for split, (csv_name, folder) in MELD_DIRS.items():
        (root / csv_name).symlink_to(corpus / csv_name)
        (root / split).mkdir()
        (root / split / folder).symlink_to(corpus / folder)
    build(root, tmp_path / "out")
    _, rows = read_tsv(tmp_path / "out" / "test.tsv")
    assert [Path(rel).name for rel, _ in rows] == ["dia0_utt0.wav", "dia3_utt0.wav"]
