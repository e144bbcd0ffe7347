"""EmoBox partitions -> fold manifests, on miniature copies of EmoBox's data/ layout
(records with its documented fields), broken rows and files included."""

import json
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf
from corpora_fixtures import output_bytes, read_lines, read_skipped, read_tsv, snapshot, write_audio

from vesper_fairseq.corpora.cli import emobox_main
from vesper_fairseq.corpora.emobox import EmoboxConfig, build
from vesper_fairseq.corpora.manifest import CorpusLayoutError

IEMOCAP_MAP = {"neu": "Neutral", "hap": "Happy", "ang": "Angry", "sad": "Sad", "exc": "Happy"}
RAVDESS_MAP = {"Angry": "Angry", "Happy": "Happy", "Calm": "Calm", "Neutral": "Neutral"}


def record(corpus: str, key: str, wav: str, emo: str, n: int, sr: int, channels: int) -> str:
    rec = {
        "key": f"{corpus}-{key}",
        "dataset": corpus,
        "wav": wav,
        "type": "raw",
        "sample_rate": sr,
        "num_frame": float(n),
        "task": "category",
        "length": n / sr,
        "emo": emo,
        "channel": channels,
    }
    return json.dumps(rec)


def write_fold(data: Path, corpus: str, k: int, splits: dict[str, list[str]]) -> None:
    fold = data / corpus / f"fold_{k}"
    fold.mkdir(parents=True, exist_ok=True)
    for split, lines in splits.items():
        (fold / f"{corpus}_{split}_fold_{k}.jsonl").write_text("\n".join(lines) + "\n")
        (fold / f"{corpus}_{split}_fold_{k}.json").write_text("[]")  # EmoBox ships both


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
                by_session[s].append(record("iemocap", turn, wav, emo, n, 16000, 1))
                sessions[f"iemocap-{turn}"] = s
    bad_wav = "downloads/iemocap/Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F009.wav"
    (root / bad_wav).write_bytes(b"")  # empty file
    fru_wav = "downloads/iemocap/Session3/sentences/wav/Ses03F_impro01/Ses03F_impro01_F008.wav"
    write_audio(root / fru_wav, 8000)
    broken = [
        '{"key": "iemocap-broken", "wav": ',  # cut short
        record("iemocap", "Ses03F_impro01_F008", fru_wav, "fru", 8000, 16000, 1),  # unknown
        record("iemocap", "Ses03F_impro01_F009", bad_wav, "sad", 8000, 16000, 1),  # empty file
        json.dumps({"key": "iemocap-nolabel", "wav": fru_wav}),  # no emo
        record("iemocap", "Ses03F_impro01_M099", bad_wav.replace("F009", "M099"), "neu", 1, 1, 1),
        by_session[3][0],  # duplicate key
        by_session[3][1].replace('"hap"', '"sad"').replace("_F001", "_F001-again", 1),
    ]
    for k in (1, 2):
        train = [line for s in (1, 2, 3) if s != k for line in by_session[s]]
        write_fold(data, "iemocap", k, {"train": train + broken, "test": by_session[k]})
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
                by_actor[a].append(record("ravdess", name, wav, emo, n, 48000, 2))
    for k in (1, 2):
        train = [line for a in by_actor if a != k for line in by_actor[a]]
        write_fold(data, "ravdess", k, {"train": train, "test": by_actor[k]})
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


@pytest.mark.parametrize(
    "corpus, wav, speaker",
    [  # paths as EmoBox's data/<corpus>/*.jsonl write them
        (
            "iemocap",
            "downloads/iemocap/Session1/sentences/wav/Ses01F_impro04/Ses01F_impro04_M003.wav",
            "Ses01M",
        ),
        ("cremad", "downloads/cremad/AudioWAV/1052_WSI_ANG_XX.wav", "1052"),
        (
            "ravdess",
            "downloads/ravdess/audio/Audio_Speech_Actors_01-24/Actor_11/03-01-07-02-02-02-11.wav",
            "11",
        ),
        ("emodb", "downloads/emodb/wav/03a02Wb.wav", "03"),
        ("esd", "downloads/esd/0005/Neutral/0005_000001.wav", "0005"),
        ("savee", "downloads/savee/KL_su02.wav", "KL"),
        ("tess", "downloads/tess/YAF_tire_fear.wav", "YAF"),
        ("casia", "downloads/casia/zhaozuoxiang/neutral/239.wav", "zhaozuoxiang"),
        ("emovo", "downloads/emovo/m3/pau-m3-d2.wav", "m3"),
        ("subesco", "downloads/subesco/F_10_FAHMEE_S_6_FEAR_5.wav", "F_10"),
        ("shemo", "downloads/shemo/female/F02S05.wav", "F02"),
        ("asvpesd", "downloads/asvpesd/Audio/actor_112/03-01-09-01-23-112-02-02-02-02.wav", "112"),
        ("enterface", "downloads/enterface/subject 19/anger/sentence 1/s19_an_1.avi", "19"),
        ("polish", "downloads/polish/m2.n_podaj_2.wav", "m2"),
        ("cafe", "downloads/cafe/CaFE_48k/Peur/Fort/12-P-2-5.wav", "12"),
        (
            "jlcorpus",
            "downloads/jlcorpus/Raw JL corpus (unchecked and unannotated)/"
            "JL(wav+txt)/female1_apologetic_15b_2.wav",
            "female1",
        ),
        ("emovdb", "downloads/emovdb/jenie_Amused/amused_85-94_0089.wav", "jenie"),
        ("meld", "downloads/meld/train/train_splits/dia0_utt0.mp4", None),
    ],
)
def test_speaker_rules_read_real_emobox_paths(corpus, wav, speaker):
    from vesper_fairseq.corpora.emobox_speakers import speaker_of, speaker_rule

    assert speaker_of({}, wav, speaker_rule(corpus)) == speaker
    assert speaker_of({"speaker": "x7"}, wav, speaker_rule(corpus)) == "x7"


def test_audio_root_may_be_the_user_folder_downloads_or_the_corpus(tmp_path):
    from vesper_fairseq.corpora.emobox import resolve_audio

    wav = "downloads/savee/DC_a01.wav"
    target = write_audio(tmp_path / wav, 800)
    for root in (tmp_path, tmp_path / "downloads", tmp_path / "downloads" / "savee"):
        assert resolve_audio(wav, root.resolve(), "savee") == target.resolve()
    assert resolve_audio("../../etc/passwd", (tmp_path / "downloads").resolve(), "savee") is None


def test_segment_records_are_cut_from_the_long_recording(tmp_path):
    """PAVOQUE-style records: one 44.1 kHz flac, each record a start_time..end_time span."""
    import numpy as np
    import soxr

    data, root = tmp_path / "data", tmp_path / "EmoBox"
    long_wav = "downloads/pavoque/pavoque-all.flac"
    write_audio(root / long_wav, 3 * 44100, sr=44100, channels=2)
    lines = []
    for i in range(8):
        rec = json.loads(record("pavoque", f"s{i}", long_wav, ["poker", "angry"][i % 2], 1, 1, 1))
        rec.update(start_time=0.3 * i + 0.05, end_time=0.3 * i + 0.3)
        lines.append(json.dumps(rec))
    bad = json.loads(lines[0])
    bad_end = dict(bad, key="pavoque-late", start_time=2.9, end_time=3.5)
    bad_num = dict(bad, key="pavoque-nan", start_time="soon")
    train = lines[:6] + [json.dumps(bad_end), json.dumps(bad_num)]
    write_fold(data, "pavoque", 1, {"train": train, "test": lines[6:]})
    (data / "pavoque" / "label_map.json").write_text('{"poker": "Neutral", "angry": "Angry"}')
    build(data, "pavoque", root, tmp_path / "out", EmoboxConfig(valid_percent=0.5))

    fold = tmp_path / "out" / "fold1"
    tsv_root, rows = read_tsv(fold / "test.tsv")
    cut_dir = "downloads/pavoque/pavoque-all"
    assert [rel for rel, _ in rows] == [f"{cut_dir}/1.850-2.100.wav", f"{cut_dir}/2.150-2.400.wav"]
    whole, _ = sf.read(str(root / long_wav), dtype="float32")
    reference = soxr.resample(whole.mean(axis=1), 44100, 16000)  # resample, then cut
    for rel, n in rows:
        cut, sr = sf.read(str(Path(tsv_root) / rel), dtype="float32")
        start = float(Path(rel).stem.split("-")[0])
        assert sr == 16000 and n == len(cut) == round(0.25 * 44100) * 16000 // 44100
        first = round(start * 16000)
        mid = slice(200, n - 200)  # away from the edges the two resamplings agree
        np.testing.assert_allclose(cut[mid], reference[first : first + n][mid], atol=2e-3)
    assert sum(len(read_lines(fold / f"{s}.emo")) for s in ("train", "valid")) == 6
    skipped = read_lines(tmp_path / "out" / "skipped.tsv")[1:]
    assert any("bad-segment: ends at 3.5 s, after the file's 3 s" in line for line in skipped)
    assert any("start_time and end_time must both be numbers" in line for line in skipped)
    cache = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "wav16k").rglob("*.wav")}
    first = output_bytes(tmp_path / "out")
    build(data, "pavoque", root, tmp_path / "out", EmoboxConfig(valid_percent=0.5))
    assert output_bytes(tmp_path / "out") == first  # a rerun reuses the cut segments
    assert {p: p.stat().st_mtime_ns for p in cache} == cache and len(cache) == 8


def test_meld_mp4_clips_and_emobox_own_valid_split(tmp_path):
    """MELD as EmoBox lists it: mp4 clips (48 kHz stereo AAC) decoded into the 16 kHz mono
    cache like manifests/meld.py's, and EmoBox's own valid split kept as it is."""
    from corpora_fixtures import write_mp4

    data, root = tmp_path / "data", tmp_path / "EmoBox"
    lines: dict[str, list[str]] = {}
    folders = {"train": "train_splits", "valid": "dev_splits_complete", "test": "test_splits"}
    for split, folder in folders.items():
        for d in range(3):
            for u, emo in enumerate(("neutral", "joy", "anger")):
                wav = f"downloads/meld/{folder}/dia{d}_utt{u}.mp4"
                write_mp4(root / wav, 24000 + 4800 * u)
                key = f"{split}_dia{d}_utt{u}"
                lines.setdefault(split, []).append(record("meld", key, wav, emo, 1, 48000, 2))
    write_fold(data, "meld", 1, lines)
    build(data, "meld", root, tmp_path / "out")
    fold = tmp_path / "out" / "fold1"
    for split, folder in folders.items():
        tsv_root, rows = read_tsv(fold / f"{split}.tsv")
        assert tsv_root == str((tmp_path / "out" / "wav16k").resolve())
        assert {rel.split("/")[2] for rel, _ in rows} == {folder} and len(rows) == 9
        for rel, n in rows:
            info = sf.info(str(Path(tsv_root) / rel))
            assert (info.samplerate, info.channels) == (16000, 1) and info.frames == n
            assert abs(n - (8000 + 1600 * int(rel[-5]))) <= 400  # AAC frames: 1024 at 48 kHz
    assert (
        "valid = EmoBox's own valid split"
        in json.loads((tmp_path / "out" / "manifests.json").read_text())["protocol"]
    )
