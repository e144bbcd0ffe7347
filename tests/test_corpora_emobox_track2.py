"""EmoBox's cross-corpus track (data/track2/*_selected_balenced.jsonl) -> a test-only manifest
folder, on miniature copies written from its records' fields (wav_filename, label, speaker),
then scored by a classifier trained elsewhere (labels mapped, unknown classes left out)."""

import csv
import json
from collections import Counter
from pathlib import Path

import corpora_fixtures as fx
import pytest
import soundfile as sf
from classifier_fixtures import make_tiny_classifier

from vesper_fairseq.corpora.cli import emobox_main
from vesper_fairseq.corpora.emobox import EmoboxConfig
from vesper_fairseq.corpora.emobox_track2 import build
from vesper_fairseq.corpora.manifest import CorpusLayoutError

NAMES = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}


def write_set(data: Path, name: str, lines: list[str]) -> Path:
    path = data / "track2" / f"{name}_selected_balenced.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def rec(wav: str, label: str, speaker: str) -> str:
    return json.dumps({"wav_filename": wav, "label": label, "speaker": speaker})


def make_iemocap_set(data: Path) -> list[str]:
    """track2/IEMOCAP naming the turns of corpora_fixtures.make_iemocap as EmoBox does
    (``happy/Ses01F_impro01_M003.wav``: a label folder, not the release's layout)."""
    lines = []
    for session in range(1, 6):
        for dialog, suffix, emo in fx.IEMOCAP_LINES:
            if emo in NAMES:
                turn = fx.iemocap_turn(session, dialog, suffix)
                lines.append(rec(f"{NAMES[emo]}/{turn}.wav", NAMES[emo], turn[3:6]))
    write_set(data, "IEMOCAP", lines)
    return lines


@pytest.fixture(scope="module")
def track2(tmp_path_factory):
    base = tmp_path_factory.mktemp("track2")
    data, iemocap, ravdess = base / "EmoBox" / "data", base / "IEMOCAP", base / "RAVDESS"
    broken = fx.make_iemocap(iemocap)
    lines = make_iemocap_set(data)
    fx.write_audio(iemocap / "extra" / "surprised_01.wav", 9000)
    fx.write_audio(iemocap / "a" / "dup.wav", 9000)
    fx.write_audio(iemocap / "b" / "dup.wav", 9000)
    lines += [
        rec("surprise/surprised_01.wav", "surprise", "01F"),  # a class the model lacks
        '{"wav_filename": "happy/x.wav", ',  # cut short
        json.dumps({"wav_filename": "happy/y.wav"}),  # no label
        rec("../../outside.wav", "sad", "01F"),
        rec("neutral/dup.wav", "neutral", "01F"),  # two files have this name
        lines[0],  # the same file again
        rec("angry/Ses01F_impro01_M007.wav", "very angry", "01F"),
    ]
    write_set(data, "IEMOCAP", lines)
    ravdess_lines = []
    for actor in (1, 2):
        for emo, code in (("neutral", 1), ("happy", 3), ("sad", 4), ("angry", 5)):
            wav = f"Actor_{actor:02d}/03-01-{code:02d}-01-01-01-{actor:02d}.wav"
            fx.write_audio(ravdess / wav, 36000 + 480 * code, sr=48000, channels=2)
            ravdess_lines.append(rec(wav, emo, f"{actor:02d}"))
    write_set(data, "RAVDESS", ravdess_lines)
    return {"data": data, "iemocap": iemocap, "ravdess": ravdess, "broken": broken}


def test_iemocap_set_from_the_original_release_by_file_name(track2, tmp_path):
    dest = tmp_path / "out"
    before = fx.snapshot(track2["iemocap"])
    summary = build(track2["data"], "track2/IEMOCAP", track2["iemocap"], dest, EmoboxConfig())
    root, rows = fx.read_tsv(dest / "test.tsv")
    labels, speakers = fx.read_lines(dest / "test.emo"), fx.read_lines(dest / "test.spk")
    assert root == str(track2["iemocap"].resolve())  # 16 kHz mono: used in place
    assert len(rows) == len(labels) == len(speakers) == 5 * 12 - 4 + 1  # 4 broken files
    assert all(rel.startswith(("Session", "extra/")) for rel, _ in rows)
    for (rel, _), label, speaker in zip(rows, labels, speakers):
        name = Path(rel).stem
        if name.startswith("Ses"):
            line = next(x for x in fx.IEMOCAP_LINES if name.endswith(f"{x[0]}_{x[1]}"))
            assert label == NAMES[line[2]] and speaker == name[3:6]
    assert [line.split()[0] for line in fx.read_lines(dest / "dict.emo.txt")] == [
        "angry", "happy", "neutral", "sad", "surprise"
    ]  # fmt: skip
    assert sum(int(line.split()[1]) for line in fx.read_lines(dest / "dict.emo.txt")) == len(rows)
    skipped = fx.read_skipped(dest / "skipped.tsv")
    reasons = Counter(reason.split(":")[0] for reason in skipped.values())
    assert reasons == {
        "bad-row": 2, "outside-root": 1, "ambiguous": 1, "duplicate": 1, "bad-label": 1,
        "missing": 1, "too-short": 1, "empty": 1, "unreadable": 1,
    }  # fmt: skip
    assert "2 files are named dup.wav (a/dup.wav, b/dup.wav)" in skipped["neutral/dup.wav"]
    assert "no text field 'label'" in skipped["track2/IEMOCAP_selected_balenced.jsonl:63"]
    assert "EmoBox track2 IEMOCAP" in summary and "test only" in summary
    record = json.loads((dest / "manifests.json").read_text())
    assert record["protocol"].startswith("EmoBox track2 IEMOCAP: EmoBox's cross-corpus test")
    assert fx.snapshot(track2["iemocap"]) == before
    first = fx.output_bytes(dest)
    build(track2["data"], "track2/iemocap", track2["iemocap"], dest, EmoboxConfig())
    assert fx.output_bytes(dest) == first


def test_ravdess_set_48k_stereo_as_written_with_a_label_map(track2, tmp_path):
    dest = tmp_path / "out"
    argv = [str(track2["data"]), "track2/RAVDESS", "--audio-root", str(track2["ravdess"])]
    assert emobox_main([*argv, "--dest", str(dest), "--label-map", "angry=ang,sad="]) == 0
    root, rows = fx.read_tsv(dest / "test.tsv")
    assert root == str((dest / "wav16k").resolve())
    assert [rel.split("/")[0] for rel, _ in rows] == ["Actor_01"] * 3 + ["Actor_02"] * 3
    for rel, n in rows:
        info = sf.info(str(dest / "wav16k" / rel))
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, n)
    assert Counter(fx.read_lines(dest / "test.emo")) == {"ang": 2, "happy": 2, "neutral": 2}
    assert len(fx.read_skipped(dest / "skipped.tsv")) == 2  # sad, dropped by the map


def test_a_set_that_does_not_exist_is_named(track2, tmp_path, capsys):
    with pytest.raises(CorpusLayoutError, match="sets found: track2/IEMOCAP, track2/RAVDESS"):
        build(track2["data"], "track2/SAVEE", track2["ravdess"], tmp_path / "a", EmoboxConfig())
    argv = [str(track2["data"]), "meld", "--audio-root", str(tmp_path), "--dest", str(tmp_path)]
    assert emobox_main(argv) == 2
    assert "track2/NAME (cross-corpus test sets)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_trained_elsewhere_scores_the_set(track2, tmp_path):
    """A 4-class classifier (its training folder gone) on track2/IEMOCAP: without a map only
    the class both name alike is scored, the others reported; with one, 'surprise' is reported
    and left out, every other row is scored under its mapped label with EmotionClassifier's
    first-crop probabilities."""
    from vesper_fairseq import EmotionClassifier
    from vesper_fairseq.cli.evaluate import main

    dest = tmp_path / "track2_iemocap"
    build(track2["data"], "track2/IEMOCAP", track2["iemocap"], dest, EmoboxConfig())
    ckpt = str(make_tiny_classifier(tmp_path / "clf.pt"))
    out = tmp_path / "eval"
    args = [ckpt, "--data", str(dest), "--out", str(out), "--quiet"]
    assert main(args) == 0  # only 'sad' is a class of both: the rest is left out, reported
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["left_out"]) == {"angry", "happy", "neutral", "surprise"}
    assert metrics["num_utterances"] == 14
    assert main([*args, "--label-map", "angry=ang,happy=hap,neutral=neu,sad=sad"]) == 2
    assert (
        main([*args, "--label-map", "angry=ang,happy=hap,neutral=neu,sad=sad", "--overwrite"]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["left_out"] == {"surprise": 1} and metrics["num_utterances"] == 56
    assert "surprise (1)" in (out / "report.txt").read_text()
    with open(out / "predictions.tsv", newline="") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    root, rows = fx.read_tsv(dest / "test.tsv")
    truth = dict(zip((rel for rel, _ in rows), fx.read_lines(dest / "test.emo")))
    assert [r["true"] for r in table] == [
        {v: k for k, v in NAMES.items()}[truth[r["file"]]] for r in table
    ]
    clf = EmotionClassifier.from_checkpoint(ckpt)
    preds = clf.predict_batch([f"{root}/{r['file']}" for r in table], segment=False)
    for row, pred in zip(table, preds):
        assert row["predicted"] == pred.label
        for c in clf.labels:
            assert float(row[f"p_{c}"]) == pytest.approx(pred.probabilities[c], abs=1e-5)
