"""vesper-evaluate writes aligned predictions, consistent metrics, report and figure."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from fairseq_runs import BIN, finetune, make_synthetic_manifests, make_tiny_teacher, run

from vesper_fairseq.evaluation.scores import confusion_matrix, emotion_scores


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A classifier trained for one epoch, scored on a test split with a too-short clip inserted
    among its rows (rows after it must keep their own labels), after its upstream file is gone."""
    root = tmp_path_factory.mktemp("evaluate")
    data = make_synthetic_manifests(root, n_speakers=4, clips_per_class=3)
    tsv, emo = (data / "test.tsv").read_text().splitlines(), (data / "test.emo").read_text()
    emo = emo.splitlines()
    sf.write(root / "corpus" / "short.wav", np.zeros(300, dtype=np.float32), 16000)
    tsv.insert(4, "short.wav\t300")
    emo.insert(3, "sad")
    (data / "test.tsv").write_text("\n".join(tsv) + "\n")
    (data / "test.emo").write_text("\n".join(emo) + "\n")
    upstream = make_tiny_teacher(root / "upstream.pt")
    finetune(data, upstream, root / "ckpt", "optimization.max_epoch=1")
    upstream.unlink()  # the classifier checkpoint must be self-contained
    out = root / "eval"
    cmd = [BIN / "vesper-evaluate", root / "ckpt" / "checkpoint_best.pt", "--data", data]
    run(cmd + ["--split", "test", "--out", out, "--batch-size", "5", "--quiet"], cwd=root)
    rows = [line.split("\t")[0] for line in tsv[1:]]
    ckpt = root / "ckpt" / "checkpoint_best.pt"
    return {"out": out, "rows": rows, "labels": dict(zip(rows, emo)), "ckpt": ckpt, "data": data}


@pytest.mark.slow
def test_predictions_follow_the_manifest_rows(evaluated):
    with open(evaluated["out"] / "predictions.tsv", newline="") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert list(table[0]) == ["file", "true", "predicted", "p_ang", "p_hap", "p_neu", "p_sad"]
    kept = [r for r in evaluated["rows"] if r != "short.wav"]
    assert [row["file"] for row in table] == kept
    assert all(row["true"] == evaluated["labels"][row["file"]] for row in table)
    probs = np.array(
        [[float(row[f"p_{c}"]) for c in ("ang", "hap", "neu", "sad")] for row in table]
    )
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    names = ["ang", "hap", "neu", "sad"]
    assert [names[i] for i in probs.argmax(axis=1)] == [row["predicted"] for row in table]


@pytest.mark.slow
def test_metrics_are_the_scores_of_the_predictions(evaluated):
    metrics = json.loads((evaluated["out"] / "metrics.json").read_text())
    with open(evaluated["out"] / "predictions.tsv", newline="") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    names = metrics["labels"]
    targets = [names.index(row["true"]) for row in table]
    preds = [names.index(row["predicted"]) for row in table]
    confusion = confusion_matrix(targets, preds, len(names))
    assert metrics["confusion"] == confusion.tolist()
    for key, value in emotion_scores(confusion).items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    assert metrics["num_utterances"] == len(table) == 24
    [skipped] = metrics["skipped_rows"]
    assert skipped["file"].endswith("short.wav") and "shorter than 400 samples" in skipped["reason"]
    assert metrics["selection"]["subset"] == "valid" and metrics["selection"]["metric"] == "ua"
    assert len(metrics["layer_weights"]) == 5
    assert sum(metrics["layer_weights"]) == pytest.approx(1.0)


@pytest.mark.slow
def test_report_and_figure(evaluated):
    report = (evaluated["out"] / "report.txt").read_text()
    for name in ("ang", "hap", "neu", "sad", "weighted avg", "WA ", "UA ", "WF1 "):
        assert name in report
    png = (evaluated["out"] / "confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10000


def test_evaluate_refuses_a_missing_checkpoint(tmp_path, capsys):
    from vesper_fairseq.cli.evaluate import main

    assert main([str(tmp_path / "nope.pt"), "--out", str(tmp_path / "out")]) == 2
    assert "nope.pt not found" in capsys.readouterr().err


def _read_predictions(path):
    with open(path, newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


@pytest.mark.slow
def test_cross_corpus_evaluation_with_a_label_map(evaluated, tmp_path, capsys):
    """The test split relabelled as another corpus would (upper-case names, two extra classes):
    mapped rows get the very predictions of the in-domain run; DIS (unknown to the model) is
    reported and left out, FEA (dropped by the map) too; nothing else is scored."""
    from vesper_fairseq.cli.evaluate import main

    data = evaluated["data"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "test.tsv").write_text((data / "test.tsv").read_text())
    labels = (data / "test.emo").read_text().splitlines()
    foreign = [lab.upper() for lab in labels]
    foreign[0], foreign[1], foreign[2] = "DIS", "DIS", "FEA"
    (other / "test.emo").write_text("\n".join(foreign) + "\n")
    classes = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    (other / "dict.emo.txt").write_text("".join(f"{c} 1\n" for c in classes))

    out = tmp_path / "eval"
    args = [str(evaluated["ckpt"]), "--data", str(other), "--out", str(out), "--quiet"]
    assert main(args) == 2  # no label of the data is one of the model's
    assert "pass --label-map" in capsys.readouterr().err
    label_map = "ANG=ang,HAP=hap,NEU=neu,SAD=sad,FEA="
    assert main(args + ["--label-map", label_map]) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["left_out"] == {"DIS": 2} and metrics["dropped_by_label_map"] == {"FEA": 1}
    assert metrics["labels"] == ["ang", "hap", "neu", "sad"]
    assert metrics["data"] == str(other)
    assert "DIS (2)" in (out / "report.txt").read_text()
    rows = [line.split("\t")[0] for line in (data / "test.tsv").read_text().splitlines()[1:]]
    expected = {r for r, lab in zip(rows[3:], labels[3:]) if r != "short.wav"}
    ours = _read_predictions(out / "predictions.tsv")
    reference = _read_predictions(evaluated["out"] / "predictions.tsv")
    assert set(ours) == expected and metrics["num_utterances"] == len(expected)
    for file, row in ours.items():
        assert row["true"] == evaluated["labels"][file]
        assert row["predicted"] == reference[file]["predicted"]
        for c in metrics["labels"]:
            assert float(row[f"p_{c}"]) == pytest.approx(float(reference[file][f"p_{c}"]), abs=1e-5)
    names = metrics["labels"]
    confusion = confusion_matrix(
        [names.index(r["true"]) for r in ours.values()],
        [names.index(r["predicted"]) for r in ours.values()],
        len(names),
    )
    assert metrics["confusion"] == confusion.tolist()
    assert metrics["ua"] == pytest.approx(emotion_scores(confusion)["ua"])


def test_a_checkpoint_cannot_opt_in_for_later_files(evaluated, tmp_path):
    """A checkpoint whose own config says task.trust_restore_file=true (plain data, read
    weights-only) does not open this process's later fairseq reads to pickles."""
    import torch

    from vesper_fairseq import safe_load
    from vesper_fairseq.cli.evaluate import load_classifier

    state = torch.load(evaluated["ckpt"], weights_only=True)
    state["cfg"]["task"]["trust_restore_file"] = True
    path = tmp_path / "checkpoint_best.pt"
    torch.save(state, path)
    load_classifier(str(path), str(evaluated["data"]), torch.device("cpu"))
    assert safe_load._fairseq["allow_pickle"] is False


def _rows_and_labels(data):
    rows = [line.split("\t")[0] for line in (data / "test.tsv").read_text().splitlines()[1:]]
    return rows, (data / "test.emo").read_text().splitlines()


@pytest.mark.slow
def test_labels_come_from_the_checkpoint_when_the_data_folder_has_moved(
    evaluated, tmp_path, capsys
):
    """The training manifests moved (their old folder gone): vesper-evaluate scores the moved
    copy without its dict.emo.txt, and with a dict listing another class in another order,
    matching labels by name (never by the dict's ids): the in-domain run's predictions and
    true labels; rows of a class the model does not know are reported and left out."""
    import shutil

    from vesper_fairseq.cli.evaluate import main

    data, ckpt = evaluated["data"], str(evaluated["ckpt"])
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    (moved / "dict.emo.txt").unlink()
    away = data.with_name("data.away")
    data.rename(away)
    try:
        assert main([ckpt, "--out", str(tmp_path / "none"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"{data / 'test.tsv'} not found" in err and "pass --data" in err
        reference = _read_predictions(evaluated["out"] / "predictions.tsv")
        out = tmp_path / "no_dict"
        assert main([ckpt, "--data", str(moved), "--out", str(out), "--quiet"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["labels"] == ["ang", "hap", "neu", "sad"] and "left_out" not in metrics
        assert metrics["data"] == str(moved) and metrics["num_utterances"] == 24
        _assert_same_predictions(_read_predictions(out / "predictions.tsv"), reference)

        (moved / "dict.emo.txt").write_text("sad 6\nfea 2\nneu 6\nhap 6\nang 6\n")
        rows, labels = _rows_and_labels(moved)
        labels[0] = labels[1] = "fea"
        (moved / "test.emo").write_text("\n".join(labels) + "\n")
        out = tmp_path / "other_dict"
        assert main([ckpt, "--data", str(moved), "--out", str(out), "--quiet"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["left_out"] == {"fea": 2} and metrics["labels"] == [
            "ang",
            "hap",
            "neu",
            "sad",
        ]
        assert "fea (2)" in (out / "report.txt").read_text()
        ours = _read_predictions(out / "predictions.tsv")
        assert set(ours) == set(reference) - set(rows[:2])
        _assert_same_predictions(ours, reference)
    finally:
        away.rename(data)


def _assert_same_predictions(ours: dict, reference: dict) -> None:
    for file, row in ours.items():
        assert (
            row["true"] == reference[file]["true"]
            and row["predicted"] == reference[file]["predicted"]
        )
        for c in ("ang", "hap", "neu", "sad"):
            assert float(row[f"p_{c}"]) == pytest.approx(float(reference[file][f"p_{c}"]), abs=1e-5)


@pytest.mark.slow
def test_a_trained_checkpoint_holds_labels_and_crop(evaluated):
    """What fine-tuning records is what evaluation and prediction need: the class names in
    dict.emo.txt's order and the training crop (tiny.yaml: 2 s); EmotionClassifier, reading
    the checkpoint alone, gives vesper-evaluate's first-crop probabilities."""
    from vesper_fairseq import EmotionClassifier
    from vesper_fairseq.inference.checkpoint import read_classifier_state

    state = read_classifier_state(evaluated["ckpt"])
    dict_order = [
        line.split()[0] for line in (evaluated["data"] / "dict.emo.txt").read_text().splitlines()
    ]
    assert list(state["cfg"]["model"]["labels"]) == dict_order == ["ang", "hap", "neu", "sad"]
    assert state["cfg"]["task"]["max_sample_size"] == 32000
    clf = EmotionClassifier.from_checkpoint(evaluated["ckpt"])
    assert clf.labels == dict_order and clf.info.crop_samples == 32000
    root = (evaluated["data"] / "test.tsv").read_text().splitlines()[0]
    reference = _read_predictions(evaluated["out"] / "predictions.tsv")
    files = sorted(reference)[:6]
    preds = clf.predict_batch([f"{root}/{f}" for f in files], segment=False)
    for file, pred in zip(files, preds):
        assert pred.label == reference[file]["predicted"]
        for c in dict_order:
            assert pred.probabilities[c] == pytest.approx(
                float(reference[file][f"p_{c}"]), abs=1e-5
            )
