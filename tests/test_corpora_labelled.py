"""Your own labelled data (CSV/TSV table or class folders) -> manifests."""

from collections import Counter
from pathlib import Path

import pytest
from corpora_fixtures import output_bytes, read_lines, read_skipped, read_tsv, write_audio

from vesper_fairseq.corpora.cli import labelled_main
from vesper_fairseq.corpora.manifest import CorpusLayoutError
from vesper_fairseq.corpora.user_labelled import LabelledConfig, build

CLASSES = ["angry", "happy", "sad"]


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """6 speakers x 3 classes x 2 clips (16 kHz mono), plus an unreadable file."""
    root = tmp_path_factory.mktemp("mydata")
    rows = []
    for s in range(6):
        for c, label in enumerate(CLASSES):
            for i in range(2):
                rel = f"clips/spk{s}/{label}_{i}.wav"
                write_audio(root / rel, 6000 + 200 * c + 50 * i)
                rows.append((rel, label, f"spk{s}"))
    (root / "clips" / "broken.wav").write_text("not audio")
    return root, rows


def split_of(dest: Path, split: str) -> tuple[list[str], list[str], list[str]]:
    _, rows = read_tsv(dest / f"{split}.tsv")
    emo, spk = read_lines(dest / f"{split}.emo"), read_lines(dest / f"{split}.spk")
    assert len(rows) == len(emo) == len(spk)
    return [rel for rel, _ in rows], emo, spk


def test_csv_with_own_column_names_gets_speaker_disjoint_splits(audio, tmp_path):
    root, rows = audio
    lines = ["file,emotion,who"] + [",".join(r) for r in rows]
    lines += [
        "clips/broken.wav,sad,spk0",  # line 38: unreadable audio
        "clips/missing.wav,sad,spk1",  # missing file
        "clips/spk0/angry_0.wav,angry,spk0",  # duplicate
        "clips/spk1/sad_0.wav,,spk1",  # empty label
        "clips/spk1/sad_1.wav,sad",  # too few fields
        "../outside.wav,sad,spk2",
    ]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    cfg = LabelledConfig("file", "emotion", "who", valid_percent=0.2, test_percent=0.2, seed=3)
    summary = build(root / "labels.csv", tmp_path / "a", cfg)
    parts = {s: split_of(tmp_path / "a", s) for s in ("train", "valid", "test")}
    speakers = {s: set(p[2]) for s, p in parts.items()}
    assert [len(speakers[s]) for s in ("train", "valid", "test")] == [4, 1, 1]
    assert set.union(*speakers.values()) == {f"spk{s}" for s in range(6)}
    assert sum(len(p[0]) for p in parts.values()) == 36  # every good row, once
    truth = {rel: (label, spk) for rel, label, spk in rows}
    for rels, emo, spk in parts.values():
        assert [truth[r] for r in rels] == list(zip(emo, spk))
    train_counts = [f"{c} 8" for c in CLASSES]  # 4 speakers x 2 clips
    assert read_lines(tmp_path / "a" / "dict.emo.txt") == train_counts
    skipped = read_skipped(tmp_path / "a" / "skipped.tsv")
    assert skipped["clips/broken.wav"].startswith("unreadable")
    assert skipped["clips/missing.wav"].startswith("missing")
    assert skipped["clips/spk0/angry_0.wav"] == "duplicate: listed again in labels.csv line 40"
    assert skipped["labels.csv:41"] == "bad-row: labels.csv line 41: empty label"
    assert (
        skipped["labels.csv:42"] == "bad-row: labels.csv line 42: 2 fields where the header has 3"
    )
    assert skipped["../outside.wav"].startswith("outside-root: labels.csv line 43")
    assert "speaker-disjoint splits" in summary
    first = output_bytes(tmp_path / "a")
    build(root / "labels.csv", tmp_path / "a", cfg)
    assert output_bytes(tmp_path / "a") == first  # seeded: the same split again


def test_tsv_with_split_column_and_label_map(audio, tmp_path):
    root, rows = audio
    names = {"spk0": "test", "spk1": "dev", "spk5": "Holdout"}
    lines = ["path\tlabel\tsplit"] + [
        f"{rel}\t{label.upper()}\t{names.get(spk, 'train')}" for rel, label, spk in rows
    ]
    lines.append("clips/broken.wav\tBORED\ttrain")  # a label outside --classes
    table = tmp_path / "meta" / "labels.tsv"
    table.parent.mkdir()
    table.write_text("\n".join(lines) + "\n")
    argv = [str(table), "--dest", str(tmp_path / "b"), "--audio-root", str(root)]
    argv += ["--label-map", "ANGRY=angry,HAPPY=happy,SAD=", "--classes", "happy,angry"]
    assert labelled_main(argv) == 0
    train, valid, test = (
        read_tsv(tmp_path / "b" / f"{s}.tsv")[1] for s in ("train", "valid", "test")
    )
    assert {r.split("/")[1] for r, _ in test} == {"spk0"} and len(test) == 4  # sad dropped
    assert {r.split("/")[1] for r, _ in valid} == {"spk1"}
    assert {r.split("/")[1] for r, _ in train} == {"spk2", "spk3", "spk4"}
    assert not (tmp_path / "b" / "train.spk").exists()
    assert read_lines(tmp_path / "b" / "dict.emo.txt") == ["happy 6", "angry 6"]
    skipped = read_lines(tmp_path / "b" / "skipped.tsv")[1:]
    reasons = Counter(line.split("\t")[1].split(":")[0] for line in skipped)
    assert reasons == {"excluded-label": 10, "bad-row": 6, "unknown-label": 1}  # SAD, spk5
    assert any("split 'Holdout' is not train/valid/test" in line for line in skipped)


def test_class_folders_are_converted_and_stratified(tmp_path):
    root = tmp_path / "corpus"
    for c, label in enumerate(CLASSES):
        for i in range(10):
            write_audio(root / label / f"take{i}.flac", 13230 + 441 * c, sr=44100, channels=2)
    write_audio(root / "stray.wav", 8000)  # not inside a class folder
    (root / "happy" / "empty.wav").write_bytes(b"")
    summary = build(root, tmp_path / "c", LabelledConfig(valid_percent=0.2, test_percent=0.1))
    counts = {
        s: Counter(read_lines(tmp_path / "c" / f"{s}.emo")) for s in ("train", "valid", "test")
    }
    assert counts["test"] == {c: 1 for c in CLASSES}  # round(0.1 x 10) per class
    assert counts["valid"] == {c: 2 for c in CLASSES}  # round(0.2 / 0.9 x 9)
    assert counts["train"] == {c: 7 for c in CLASSES}
    tsv_root, rows = read_tsv(tmp_path / "c" / "train.tsv")
    assert tsv_root == str((tmp_path / "c" / "wav16k").resolve())
    assert all(n == (4800 + 160 * CLASSES.index(r.split("/")[0])) for r, n in rows)
    skipped = read_skipped(tmp_path / "c" / "skipped.tsv")
    assert skipped == {
        "happy/empty.wav": "empty: file has 0 bytes",
        "stray.wav": "no-class: not inside a class folder",
    }
    assert "stratified 70%/20%/10%" in summary and "speakers unknown" in summary


def test_bad_tables_name_file_and_line(audio, tmp_path, capsys):
    root, _ = audio
    (root / "bad.csv").write_text("path,label\nclips/spk0/sad_0.wav,sad\n")
    with pytest.raises(CorpusLayoutError, match=r"bad.csv, line 1: no column 'emotion'"):
        build(root / "bad.csv", tmp_path / "d", LabelledConfig(label_column="emotion"))
    (root / "quote.csv").write_text('path,label\n"clips/spk0/sad_0.wav,sad\n' + "x" * 200000)
    assert labelled_main([str(root / "quote.csv"), "--dest", str(tmp_path / "e")]) == 2
    assert "quote.csv, line" in capsys.readouterr().err
    with pytest.raises(ValueError, match="names SAD, not a label of"):  # labels are lower-case
        build(root / "bad.csv", tmp_path / "g", LabelledConfig(label_map="SAD=sad"))
    with pytest.raises(ValueError, match="must stay below 1"):
        LabelledConfig(valid_percent=0.5, test_percent=0.5)
    argv = [str(root / "bad.csv"), "--dest", str(tmp_path / "f"), "--test-percent", "0.9"]
    assert labelled_main(argv) == 2  # valid 0.1 + test 0.9: one line, no traceback
    assert "must stay below 1" in capsys.readouterr().err
