"""vesper-cv over fold folders: per-fold evaluation, summary, resumption."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from fairseq_runs import BIN, REPO, make_synthetic_manifests, make_tiny_teacher, run

from vesper_fairseq.cli.cv import find_folds
from vesper_fairseq.evaluation.reports import summary_markdown


def cv_command(data, out, upstream, *options, epochs=1):
    return [
        BIN / "vesper-cv",
        data,
        "--config-dir",
        REPO / "examples" / "finetuning",
        "--config-name",
        "tiny",
        "--out",
        out,
        *options,
        "--",
        f"model.upstream_path={upstream}",
        f"optimization.max_epoch={epochs}",
    ]


@pytest.mark.slow
def test_cv_over_two_folds_then_resume(tmp_path):
    corpus = make_synthetic_manifests(tmp_path / "synth", n_speakers=4, clips_per_class=3)
    data = tmp_path / "folds"
    for fold in ("fold1", "fold2"):
        shutil.copytree(corpus, data / fold)
    (data / "fold2" / "test.tsv").write_text((corpus / "valid.tsv").read_text())
    (data / "fold2" / "test.emo").write_text((corpus / "valid.emo").read_text())
    upstream = make_tiny_teacher(tmp_path / "upstream.pt")
    out = tmp_path / "out"
    run(cv_command(data, out, upstream), cwd=tmp_path)

    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["folds"]) == ["fold1", "fold2"]
    per_fold = {
        f: json.loads((out / f / "eval" / "metrics.json").read_text()) for f in summary["folds"]
    }
    assert summary["folds"]["fold1"]["num_utterances"] == 24
    assert summary["folds"]["fold2"]["num_utterances"] == 12  # its test split is the valid one
    for key in ("wa", "ua", "wf1", "macro_f1"):
        values = [per_fold[f][key] for f in ("fold1", "fold2")]
        assert summary["mean"][key] == pytest.approx(np.mean(values))
        assert summary["std"][key] == pytest.approx(np.std(values))
    assert "'valid' split by ua" in summary["selection"]
    assert "optimistic" in summary["selection"]  # fold2: valid = test
    markdown = (out / "summary.md").read_text()
    assert markdown == summary_markdown(summary)
    assert "| fold1 | 24 |" in markdown and "mean ± std" in markdown and "valid" in markdown

    # a finished fold is skipped; an interrupted training resumes from checkpoint_last.pt
    fold1_metrics = (out / "fold1" / "eval" / "metrics.json").stat().st_mtime_ns
    fold1_log = (out / "fold1" / "train.log").read_text()
    record = json.loads((out / "fold2" / "cv_fold.json").read_text())
    assert record["trained"] and record["evaluation"] == {"split": "test", "checkpoint": "best"}
    record.update(trained=False, evaluation=None)  # as a run killed while training leaves it
    (out / "fold2" / "cv_fold.json").write_text(json.dumps(record))
    (out / "fold2" / "eval" / "metrics.json").unlink()
    log = run(cv_command(data, out, upstream), cwd=tmp_path)
    assert "fold1: already evaluated" in log
    assert (out / "fold1" / "eval" / "metrics.json").stat().st_mtime_ns == fold1_metrics
    assert (out / "fold1" / "train.log").read_text() == fold1_log
    fold2_log = (out / "fold2" / "train.log").read_text()
    assert re.search(r"Loaded checkpoint \S*checkpoint_last\.pt", fold2_log.split("$ ")[-1])
    assert json.loads((out / "summary.json").read_text())["folds"] == summary["folds"]

    # other training settings: refused, naming the fold and what differs; nothing rewritten
    command = cv_command(data, out, upstream, "--split", "valid", "--checkpoint", "last", epochs=3)
    refused = subprocess.run(list(map(str, command)), cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2
    assert "fold1: " in refused.stderr and "override optimization.max_epoch: '1' -> '3'" in (
        refused.stderr
    )
    assert (out / "fold1" / "eval" / "metrics.json").stat().st_mtime_ns == fold1_metrics
    # another split and checkpoint only: the trained folds are evaluated again, not retrained
    command = cv_command(data, out, upstream, "--split", "valid", "--checkpoint", "last")
    log = run(command, cwd=tmp_path)
    assert "fold1: evaluation settings differ" in log
    assert (out / "fold1" / "train.log").read_text() == fold1_log
    metrics = json.loads((out / "fold1" / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "valid" and metrics["checkpoint"].endswith("checkpoint_last.pt")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["split"] == "valid" and summary["checkpoint"] == "last"
    assert summary["folds"]["fold1"]["num_utterances"] == 12


def test_find_folds(tmp_path):
    for name in ("fold10", "fold2", "fold1", "other"):
        (tmp_path / name).mkdir()
    assert [p.name for p in find_folds(tmp_path)] == ["fold1", "fold2", "fold10"]
    assert [p.name for p in find_folds(tmp_path, "fold2")] == ["fold2"]
    with pytest.raises(FileNotFoundError, match="fold7"):
        find_folds(tmp_path, "fold7")
    with pytest.raises(FileNotFoundError, match="no fold"):
        find_folds(tmp_path / "other")


def test_summary_reports_the_emobox_headline_and_how_the_folds_were_made(tmp_path):
    """EmoBox reports macro-F1 per fold, then mean ± std; the protocol the manifest script
    recorded in manifests.json (EmoBox partitions, valid carved by speaker) is quoted."""
    from argparse import Namespace

    from sklearn.metrics import accuracy_score, f1_score

    from vesper_fairseq.cli.cv import summarize
    from vesper_fairseq.evaluation.scores import confusion_matrix, emotion_scores

    data = tmp_path / "emobox_iemocap"
    rng = np.random.default_rng(0)
    results, folds, truth = {}, {}, {}
    for name in ("fold1", "fold2", "fold3"):
        (data / name).mkdir(parents=True)
        folds[name] = data / name
        n_classes = 3 if name == "fold3" else 4  # fold3: class d neither true nor predicted
        y, p = rng.integers(0, n_classes, 50), rng.integers(0, n_classes, 50)
        conf = confusion_matrix(y, p, 4)
        results[name] = {**emotion_scores(conf), "confusion": conf.tolist(), "num_utterances": 50}
        results[name]["labels"] = ["a", "b", "c", "d"]
        truth[name] = (f1_score(y, p, average="macro"), accuracy_score(y, p))  # as EmoBox
    protocol = "EmoBox partitions of iemocap, 3 folds: valid carved."
    (data / "manifests.json").write_text(json.dumps({"protocol": protocol}))
    args = Namespace(
        data=str(data),
        config_dir=".",
        config_name="x",
        overrides=[],
        split="test",
        checkpoint="last",
    )
    summary = summarize(args, results, folds)
    macro = [truth[f][0] for f in folds]
    assert summary["emobox"]["macro_f1"]["mean"] == pytest.approx(np.mean(macro))
    assert summary["emobox"]["macro_f1"]["std"] == pytest.approx(np.std(macro))
    assert summary["folds"]["fold3"]["macro_f1"] == pytest.approx(0.75 * macro[2])  # d counts 0
    assert summary["mean"]["wa"] == pytest.approx(np.mean([truth[f][1] for f in folds]))
    markdown = summary_markdown(summary)
    headline = f"macro-F1 {100 * np.mean(macro):.2f} ± {100 * np.std(macro):.2f}"
    assert f"Headline (EmoBox): {headline}" in markdown
    assert "| fold | utterances | WA | UA | macro-F1 | WF1 |" in markdown
    assert "Data: EmoBox partitions of iemocap, 3 folds: valid carved." in markdown
    assert "A fold lacks a class" in markdown
