"""EmoBox partitions -> fold manifests, on miniature copies of EmoBox's data/ layout
(records with its documented fields), broken rows and files included."""

import json
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf
from corpora_fixtures import (
    emobox_record,
    output_bytes,
    read_lines,
    read_skipped,
    read_tsv,
    snapshot,
    write_audio,
    write_emobox_fold,
)

from vesper_fairseq.corpora.cli import emobox_main
from vesper_fairseq.corpora.emobox import EmoboxConfig, build
from vesper_fairseq.corpora.manifest import CorpusLayoutError

IEMOCAP_MAP = {"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad", "exc": "Happy"}
RAVDESS_MAP = {"Angry": "Angry", "Happy": "Happy", "Calm": "Calm", "Neutral": "Neutral"}


def make_iemocap(data: Path, root: Path) -> dict:
    """3 sessions x 2 speakers x 5 clips at 16 kHz mono under ROOT/downloads/iemocap/; fold k
    tests session k (k = 1, 2). Returns key -> session and the expected skipped reasons."""
    emos = ["neu", "hap", "exc", "ang", "sad"]
    by_session, sessions = {1: [], 2: [], 3: []}, {}
    for s in (1, 2, 3):
        for g in "FM":
            for i, emo in enumerate(emos):
                turn = f"Ses0{s}F_impro01_{g}{i:03d}"
                wav = f"downloads/iemocap/Session{s}/sentences/wav/Ses0{s}F_impro01/{turn}.wav"
                n = 8000 + 400 * i
                write_audio(root / wav, n)
                by_session[s].append(emobox_record("iemocap", turn, wav, emo, n, 16000, 1))
                sessions[f"iemocap-{turn}"] = s
    bad_wav = "downloads/iemocap/Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F009.wav"
    (root / bad_wav).write_bytes(b"")  # empty file
    fru_wav = "downloads/iemocap/Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F008.wav"
    write_audio(root / fru_wav, 8000)
    broken = [
        '{"key": "iemocap-broken", "wav": ',  # cut short
        emobox_record("iemocap", "Ses03F_impro01_F008", fru_wav, "fru", 8000, 16000, 1),  # unknown
        emobox_record(
            "iemocap", "Ses03F_impro01_F009", bad_wav, "sad", 8000, 16000, 1
        ),  # empty file
        json.dumps({"key": "iemocap-nolabel", "wav": fru_wav}),  # no emo
        emobox_record(
            "iemocap", "Ses03F_impro01_M099", bad_wav.replace("F009", "M099"), "neu", 1, 1, 1
        ),
        by_session[3][0],  # duplicate key
        by_session[3][1].replace('"hap"', '"sad"').replace("_F001", "_F001-again", 1),
    ]
    for k in (1, 2):
        train = [line for s in (1, 2, 3) if s != k for line in by_session[s]]
        write_emobox_fold(data, "iemocap", k, {"train": train + broken, "test": by_session[k]})
    (data / "iemocap" / "label_map.json").write_text(json.dumps(IEMOCAP_MAP, indent=4))
    return sessions


def make_ravdess(data: Path, root: Path) -> None:
    """4 actors x 4 emotions x 2 clips, 48 kHz stereo, under ROOT/ravdess/ (no downloads/)."""
    codes = {"Neutral": 1, "Calm": 2, "Happy": 3, "Angry": 5}
    by_actor = {a: [] for a in (1, 2, 3, 4)}
    for a in by_actor:
        for emo, code in codes.items():
            for rep in (1, 2):
                name = f"03-01-{code:02d}-01-01-{rep:02d}-{a:02d}"
                wav = f"downloads/ravdess/audio/Actor_{a:02d}/{name}.wav"
                n = 24000 + 480 * rep
                write_audio(root / wav.removeprefix("downloads/"), n, sr=48000, channels=2)
                by_actor[a].append(emobox_record("ravdess", name, wav, emo, n, 48000, 2))
    for k in (1, 2):
        train = [line for a in by_actor if a != k for line in by_actor[a]]
        write_emobox_fold(data, "ravdess", k, {"train": train, "test": by_actor[k]})
    (data / "ravdess" / "label_map.json").write_text(json.dumps(RAVDESS_MAP))


@pytest.fixture(scope="module")
def emobox(tmp_path_factory):
    base = tmp_path_factory.mktemp("emobox")
    data, root = base / "EmoBox" / "data", base / "EmoBox"
    sessions = make_iemocap(data, root)
    make_ravdess(data, root / "downloads")
    return data, root, sessions


def load_fold(fold: Path, split: str):
    tsv_root, rows = read_tsv(fold / f"{split}.tsv")
    emo, spk = read_lines(fold / f"{split}.emo"), read_lines(fold / f"{split}.spk")
    assert len(rows) == len(emo) == len(spk)
    return tsv_root, [Path(rel).stem for rel, _ in rows], emo, spk


def test_iemocap_folds_keep_emobox_train_test_and_carve_valid_by_speaker(emobox, tmp_path):
    data, root, sessions = emobox
    before = snapshot(root)
    summary = build(data, "iemocap", root, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("fold*")) == ["fold1", "fold2"]
    labels = {"neu": "Neutral", "hap": "Happy", "exc": "Happy", "ang": "Angry", "sad": "Sad"}
    for k in (1, 2):
        fold = out / f"fold{k}"
        tsv_root, test, test_emo, _ = load_fold(fold, "test")
        _, train, _, train_spk = load_fold(fold, "train")
        _, valid, _, valid_spk = load_fold(fold, "valid")
        assert tsv_root == str(root.resolve())  # 16 kHz mono: used in place
        assert {sessions[f"iemocap-{t}"] for t in test} == {k} and len(test) == 10
        assert {sessions[f"iemocap-{t}"] for t in train + valid} == {1, 2, 3} - {k}
        assert len(train) + len(valid) == 20  # the broken rows are gone, nothing else
        assert len(set(valid_spk)) == 1 and not set(valid_spk) & set(train_spk)
        assert set(train_spk) | set(valid_spk) == {
            f"Ses0{s}{g}" for s in (1, 2, 3) if s != k for g in "FM"
        }
        raw = [["neu", "hap", "exc", "ang", "sad"][int(t[-3:])] for t in test]
        assert test_emo == [labels[r] for r in raw]
        assert read_lines(fold / "dict.emo.txt")[0].split()[0] == "Neutral"
        assert [line.split()[0] for line in read_lines(fold / "dict.emo.txt")] == [
            "Neutral",
            "Happy",
            "Angry",
            "Sad",
        ]
    skipped = read_skipped(out / "skipped.tsv")
    reasons = Counter(
        line.split("\t")[1].split(":")[0] for line in read_lines(out / "skipped.tsv")[1:]
    )
    assert reasons == {
        "bad-row": 4,
        "unknown-label": 2,
        "empty": 1,
        "missing": 1,
        "duplicate": 2,
        "conflicting-label": 2,
    }
    bad = skipped["iemocap/fold_1/iemocap_train_fold_1.jsonl:21"]
    assert "line 21: not valid JSON" in bad
    assert "no text field 'emo'" in skipped["iemocap/fold_2/iemocap_train_fold_2.jsonl:24"]
    assert (
        "'fru'"
        in skipped[
            "downloads/iemocap/Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F008.wav"
        ]
    )
    assert "speaker-disjoint" in summary and "exactly as EmoBox" in summary
    record = json.loads((out / "manifests.json").read_text())
    assert record["protocol"].startswith("EmoBox partitions of iemocap, 2 folds")
    assert snapshot(root) == before
    first = output_bytes(out)
    build(data, "iemocap", root, out)
    assert output_bytes(out) == first


def test_ravdess_48k_stereo_is_converted_and_label_map_applies(emobox, tmp_path):
    data, root, _ = emobox
    out = tmp_path / "out"
    code = emobox_main(
        [
            str(data),
            "ravdess",
            "--audio-root",
            str(root / "downloads"),
            "--dest",
            str(out),
            "--label-map",
            "Calm=Neutral,Angry=anger",
        ]
    )
    assert code == 0
    for k in (1, 2):
        fold = out / f"fold{k}"
        tsv_root, rows = read_tsv(fold / "test.tsv")
        assert tsv_root == str((out / "wav16k").resolve())
        assert [rel.split("/")[2] for rel, _ in rows] == [f"Actor_{k:02d}"] * 8
        for rel, n in rows:
            info = sf.info(str(out / "wav16k" / rel))
            assert (info.samplerate, info.channels, info.frames) == (16000, 1, n)
            assert n in (8000 + 160, 8000 + 320)  # 48 kHz -> 16 kHz: a third of the frames
        assert Counter(read_lines(fold / "test.emo")) == {"Neutral": 4, "Happy": 2, "anger": 2}
        assert [line.split()[0] for line in read_lines(fold / "dict.emo.txt")] == [
            "anger",
            "Happy",
            "Neutral",
        ]
    assert read_lines(out / "skipped.tsv") == ["path\treason"]
    task = load_task(out / "fold2")
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    names = [task.labels[t] for t in dataset.targets]
    assert len(dataset) == 8 and names == read_lines(out / "fold2" / "valid.emo")
    assert dataset[0]["source"].shape[0] == read_tsv(out / "fold2" / "valid.tsv")[1][0][1]


def load_task(data: Path):
    from vesper_fairseq.tasks.emotion_classification import (
        EmotionClassificationConfig,
        EmotionClassificationTask,
    )

    cfg = EmotionClassificationConfig(data=str(data), seed=1, max_sample_size=10**6)
    return EmotionClassificationTask.setup_task(cfg)


def test_errors_name_the_problem(emobox, tmp_path, capsys):
    data, root, _ = emobox
    with pytest.raises(CorpusLayoutError, match="corpora found: iemocap, ravdess"):
        build(data, "meld", root, tmp_path / "a")
    (tmp_path / "a" / "fold7").mkdir(parents=True)
    (tmp_path / "a" / "fold7" / "train.tsv").write_text("/elsewhere\n")
    with pytest.raises(CorpusLayoutError, match="already holds fold7/train.tsv"):
        build(data, "ravdess", root / "downloads", tmp_path / "a")
    with pytest.raises(ValueError, match=r"valid_percent must be in \[0, 1\)"):
        EmoboxConfig(valid_percent=1.5)
    argv = [str(data), "ravdess", "--audio-root", str(root), "--dest", str(tmp_path / "c")]
    assert emobox_main(argv + ["--label-map", "Angry=Happy,Calm=,Neutral="]) == 2
    assert "fewer than 2 classes" in capsys.readouterr().err
    assert emobox_main(argv + ["--label-map", "Calm=Neutral,Surprised=Surprise"]) == 2
    assert "names Surprised, not a label of EmoBox ravdess" in capsys.readouterr().err
