"""vesper-cv reruns against each fold's record (cv_fold.json): the same settings are skipped,
other training settings refused (or redone with --overwrite), other evaluation settings
evaluated again without retraining. Training and evaluation are stand-ins here (test_cv.py
runs the real ones)."""

import json

import numpy as np
import pytest
from fairseq_runs import REPO, make_tiny_teacher

from vesper_fairseq.cli import cv

CALLS = []


def fake_train(args, fold, fold_out):
    CALLS.append(("train", fold.name, list(args.overrides)))
    (fold_out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in ("best", "last"):
        (fold_out / "checkpoints" / f"checkpoint_{name}.pt").write_text(" ".join(args.overrides))


def fake_evaluate(checkpoint, out, data, split, **kwargs):
    CALLS.append(("evaluate", f"{data[-5:]} {split} {checkpoint.rsplit('/', 1)[-1]}"))
    confusion = np.array([[3, 1], [1, 3]])
    metrics = {"wa": 0.75, "ua": 0.75, "wf1": 0.75, "macro_f1": 0.75, "split": split}
    metrics.update(confusion=confusion.tolist(), labels=["a", "b"], num_utterances=8)
    metrics.update(selection={"subset": "valid", "metric": "ua", "maximize": True})
    metrics.update(checkpoint=checkpoint)
    (cv.Path(out) / "metrics.json").parent.mkdir(parents=True, exist_ok=True)
    (cv.Path(out) / "metrics.json").write_text(json.dumps(metrics))
    return metrics


@pytest.fixture
def folds(tmp_path, monkeypatch):
    monkeypatch.setattr(cv, "train_fold", fake_train)
    monkeypatch.setattr(cv, "evaluate", fake_evaluate)
    CALLS.clear()
    for name in ("fold1", "fold2"):
        for split in ("train", "valid", "test"):
            (tmp_path / "data" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "data" / name / f"{split}.tsv").write_text(
                f"/audio\n{name}_{split}.wav\t1\n"
            )
            (tmp_path / "data" / name / f"{split}.emo").write_text("a\n")
    make_tiny_teacher(tmp_path / "upstream.pt")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def vesper_cv(*options, epochs=1, upstream="upstream.pt"):
    argv = ["data", "--config-dir", str(REPO / "examples" / "finetuning"), "--config-name"]
    argv += ["tiny", "--out", "out", *options, "--", f"model.upstream_path={upstream}"]
    code = cv.main([*argv, f"optimization.max_epoch={epochs}"])
    done, CALLS[:] = list(CALLS), []
    return code, done


def test_the_reviewers_rerun_is_refused_and_the_same_one_skipped(folds, capsys):
    assert vesper_cv("--split", "valid")[0] == 0
    fold1 = (folds / "out" / "fold1" / "eval" / "metrics.json").read_text()
    summary = (folds / "out" / "summary.json").read_text()
    capsys.readouterr()

    code, done = vesper_cv("--split", "test", "--checkpoint", "last", epochs=3)
    err = capsys.readouterr().err
    assert code == 2 and done == []
    assert "fold1: out/fold1 was trained with other settings" in err
    assert "fold2: out/fold2 was trained" in err
    assert "override optimization.max_epoch: '1' -> '3'" in err
    assert "--overwrite" in err and "new --out" in err
    assert (folds / "out" / "fold1" / "eval" / "metrics.json").read_text() == fold1
    assert (folds / "out" / "summary.json").read_text() == summary

    assert vesper_cv("--split", "valid") == (0, [])  # the same settings: skipped
    assert (folds / "out" / "summary.json").read_text() == summary


def test_other_evaluation_settings_evaluate_the_trained_folds_again(folds, caplog):
    vesper_cv()
    caplog.clear()
    code, done = vesper_cv("--split", "valid", "--checkpoint", "last")
    assert code == 0
    assert done == [
        ("evaluate", "fold1 valid checkpoint_last.pt"),
        ("evaluate", "fold2 valid checkpoint_last.pt"),
    ]
    assert (
        "fold1: evaluation settings differ (checkpoint: 'best' -> 'last'; split: 'test' -> 'valid')"
        in caplog.text
    )
    summary = json.loads((folds / "out" / "summary.json").read_text())
    assert summary["split"] == "valid" and summary["checkpoint"] == "last"
    record = json.loads((folds / "out" / "fold2" / "cv_fold.json").read_text())
    assert record["evaluation"] == {"split": "valid", "checkpoint": "last"}
    assert vesper_cv("--split", "valid", "--checkpoint", "last") == (0, [])


def test_overwrite_redoes_only_the_folds_made_otherwise(folds):
    vesper_cv()
    (folds / "data" / "fold2" / "train.tsv").write_text("/audio\nother.wav\t1\n")
    stale = folds / "out" / "fold2" / "checkpoints" / "checkpoint3.pt"
    stale.write_text("")
    code, done = vesper_cv()
    assert code == 2 and done == []
    code, done = vesper_cv("--overwrite")
    assert code == 0 and not stale.exists()
    assert [c[:2] for c in done] == [
        ("train", "fold2"),
        ("evaluate", "fold2 test checkpoint_best.pt"),
    ]
    summary = json.loads((folds / "out" / "summary.json").read_text())
    assert set(summary["made_by"]["manifests_sha256"]) == {"fold1", "fold2"}


def test_an_interrupted_training_resumes_only_with_its_settings(folds, capsys):
    vesper_cv()
    record_path = folds / "out" / "fold1" / "cv_fold.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(dict(record, trained=False, evaluation=None)))
    (folds / "out" / "fold1" / "eval" / "metrics.json").unlink()

    code, done = vesper_cv(epochs=3)
    assert code == 2 and done == [] and "fold1: out/fold1 was trained" in capsys.readouterr().err
    code, done = vesper_cv()
    assert code == 0 and [c[:2] for c in done] == [
        ("train", "fold1"),
        ("evaluate", "fold1 test checkpoint_best.pt"),
    ]


def test_the_upstream_weights_and_an_unrecorded_fold(folds, capsys):
    vesper_cv()
    make_tiny_teacher(folds / "upstream.pt", seed=1)  # the same path, other weights
    assert vesper_cv()[0] == 2
    assert "the upstream encoder's weights changed (upstream_weights)" in capsys.readouterr().err
    make_tiny_teacher(folds / "upstream.pt")
    (folds / "out" / "fold2" / "cv_fold.json").unlink()  # as an earlier release left it
    assert vesper_cv()[0] == 2
    assert "fold2: out/fold2 was made by an earlier vesper-cv" in capsys.readouterr().err
    assert vesper_cv(upstream="missing.pt")[0] == 2
    assert "model.upstream_path: missing.pt: no such file" in capsys.readouterr().err


def test_a_training_that_left_no_checkpoint_starts_again_with_new_settings(folds, monkeypatch):
    def failing(args, fold, fold_out):
        raise RuntimeError(f"{fold.name}: fairseq-hydra-train failed")

    monkeypatch.setattr(cv, "train_fold", failing)
    assert vesper_cv(epochs=3)[0] == 2
    monkeypatch.setattr(cv, "train_fold", fake_train)
    code, done = vesper_cv()
    assert (
        code == 0
        and ("train", "fold1", ["model.upstream_path=upstream.pt", "optimization.max_epoch=1"])
        in done
    )
