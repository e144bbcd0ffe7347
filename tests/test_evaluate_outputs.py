"""vesper-evaluate's output folder is one set made by one run: a rerun with other settings is
refused (--overwrite replaces it), a killed run leaves the earlier set; a row whose audio
cannot be read is reported and skipped; a run logs no notice about the plugin's import."""

import json
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from classifier_fixtures import LABELS, make_tiny_classifier
from corpora_fixtures import write_audio

from vesper_fairseq.cli import evaluate
from vesper_fairseq.data.audio_dataset import CroppedAudioDataset
from vesper_fairseq.data.manifest_file import ManifestError

OUTPUTS = ["confusion.png", "metrics.json", "predictions.tsv", "report.txt"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny classifier and valid / test splits of tone clips (0.5-1.2 s)."""
    root = tmp_path_factory.mktemp("evaluate_outputs")
    ckpt = make_tiny_classifier(root / "ckpt.pt")
    data = root / "data"
    data.mkdir()
    for split, n in (("valid", 6), ("test", 8)):
        rows = [f"{split}{i}.wav\t{8000 + 600 * i}" for i in range(n)]
        for i in range(n):
            write_audio(root / "audio" / f"{split}{i}.wav", 8000 + 600 * i)
        (data / f"{split}.tsv").write_text("\n".join([str(root / "audio"), *rows]) + "\n")
        (data / f"{split}.emo").write_text("".join(f"{LABELS[i % 4]}\n" for i in range(n)))
    return {"root": root, "ckpt": ckpt, "data": data}


def run(corpus, out, *options):
    args = [str(corpus["ckpt"]), "--data", str(corpus["data"]), "--out", str(out), "--quiet"]
    return evaluate.main(args + list(options))


def contents(out) -> dict:
    return {name: (out / name).read_bytes() for name in sorted(os.listdir(out))}


def metrics(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_a_rerun_with_other_settings_is_refused_unless_overwrite(corpus, tmp_path, capsys):
    out = tmp_path / "ev"
    assert run(corpus, out, "--split", "valid") == 0
    made = metrics(out)["made_by"]
    assert made["split"] == "valid" and made["checkpoint"] == str(corpus["ckpt"])
    assert {"checkpoint_sha256", "manifest_sha256", "labels_sha256", "label_map"} <= set(made)
    before = contents(out)
    assert sorted(before) == OUTPUTS

    assert run(corpus, out, "--split", "test") == 2
    err = capsys.readouterr().err
    assert "made with other settings (split: 'valid' -> 'test')" in err and "--overwrite" in err
    assert contents(out) == before

    assert run(corpus, out, "--split", "test", "--overwrite") == 0
    assert metrics(out)["split"] == metrics(out)["made_by"]["split"] == "test"
    assert "split test of" in (out / "report.txt").read_text()
    assert run(corpus, out, "--split", "test") == 0  # the same settings: redone

    other = make_tiny_classifier(tmp_path / "ckpt.pt", seed=1)  # other weights, same name
    os.replace(other, corpus["ckpt"])
    try:
        assert run(corpus, out, "--split", "test") == 2
        assert "the checkpoint file changed (checkpoint_sha256)" in capsys.readouterr().err
    finally:
        make_tiny_classifier(corpus["ckpt"])


def test_a_folder_holding_other_files_is_never_replaced(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint_best.pt").write_bytes(b"weights")
    assert run(corpus, out, "--overwrite") == 2
    assert "holds files vesper-evaluate does not write (checkpoint_best.pt)" in (
        capsys.readouterr().err
    )
    assert os.listdir(out) == ["checkpoint_best.pt"]


def test_an_interrupted_run_leaves_the_earlier_set(corpus, tmp_path, monkeypatch):
    out = tmp_path / "ev"
    assert run(corpus, out, "--split", "valid") == 0
    before = contents(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "plot_confusion", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(corpus, out, "--split", "test", "--overwrite")
    assert contents(out) == before
    assert os.listdir(tmp_path) == ["ev"]  # no temporary folder, no lock left


KILLED_WHILE_PLOTTING = """
import os, signal, sys
from vesper_fairseq.cli import evaluate
evaluate.plot_confusion = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
evaluate.main(sys.argv[1:])
"""


def test_a_run_killed_while_plotting_leaves_the_earlier_set(corpus, tmp_path):
    """The reviewer's case: a --split test run into a valid run's folder, killed inside
    plot_confusion; the next run clears what the killed one left."""
    out = tmp_path / "ev"
    assert run(corpus, out, "--split", "valid") == 0
    before = contents(out)
    args = [str(corpus["ckpt"]), "--data", str(corpus["data"]), "--out", str(out), "--quiet"]
    args += ["--split", "test", "--overwrite"]
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_PLOTTING, *args], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert contents(out) == before
    assert len(os.listdir(tmp_path)) == 3  # the killed run's folder and lock
    assert run(corpus, out, "--split", "valid") == 0
    assert os.listdir(tmp_path) == ["ev"]


def test_outputs_follow_the_umask(corpus, tmp_path):
    mask = os.umask(0o027)
    try:
        assert run(corpus, tmp_path / "ev") == 0
    finally:
        os.umask(mask)
    assert (tmp_path / "ev").stat().st_mode & 0o777 == 0o750
    assert {(tmp_path / "ev" / n).stat().st_mode & 0o777 for n in OUTPUTS} == {0o640}


@pytest.fixture
def corrupt(corpus, tmp_path):
    """The test split with row 3's audio replaced by text and row 5's file missing."""
    data = tmp_path / "data"
    data.mkdir()
    lines = (corpus["data"] / "test.tsv").read_text().splitlines()
    audio = tmp_path / "audio"
    audio.mkdir()
    for line in lines[1:]:
        name = line.split("\t")[0]
        os.symlink(corpus["root"] / "audio" / name, audio / name)
    (audio / "test3.wav").unlink()
    (audio / "test3.wav").write_bytes(b"not audio" * 100)
    (audio / "test5.wav").unlink()
    (data / "test.tsv").write_text("\n".join([str(audio), *lines[1:]]) + "\n")
    (data / "test.emo").write_text((corpus["data"] / "test.emo").read_text())
    return {**corpus, "data": data, "bad": [str(audio / "test3.wav"), str(audio / "test5.wav")]}


@pytest.mark.parametrize("workers", ["0", "2"])
def test_unreadable_rows_are_reported_and_skipped(corrupt, tmp_path, caplog, workers):
    out = tmp_path / "ev"
    with caplog.at_level(logging.INFO):
        assert run(corrupt, out, "--num-workers", workers) == 0
    result = metrics(out)
    skipped = result["skipped_rows"]
    assert [row["file"] for row in skipped] == corrupt["bad"]
    assert "Format not recognised" in skipped[0]["reason"]
    assert skipped[1]["reason"] == "file not found"
    assert result["num_utterances"] == 6 == sum(map(sum, result["confusion"]))
    predicted = [line.split("\t")[0] for line in (out / "predictions.tsv").read_text().split("\n")]
    assert "test3.wav" not in predicted and "test5.wav" not in predicted
    report = (out / "report.txt").read_text()
    assert "2 rows not scored:" in report and f"{corrupt['bad'][0]}: " in report
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.split(":")[0] for w in warnings] == [f"skipped {bad}" for bad in corrupt["bad"]]
    assert caplog.records[-1].getMessage().endswith(f"(6 utterances, 2 rows not scored) -> {out}")


def test_a_split_none_of_whose_audio_can_be_read_is_an_error(corrupt, tmp_path, capsys):
    tsv = corrupt["data"] / "test.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join([lines[0], lines[4], lines[6]]) + "\n")
    emo = (corrupt["data"] / "test.emo").read_text().splitlines()
    (corrupt["data"] / "test.emo").write_text(f"{emo[3]}\n{emo[5]}\n")
    assert run(corrupt, tmp_path / "ev") == 2
    err = capsys.readouterr().err
    assert f"{tsv}: the audio of none of its rows can be read ({corrupt['bad'][0]}: " in err
    assert not (tmp_path / "ev").exists()


def test_the_audio_dataset_itself_still_fails_on_unreadable_audio(corrupt):
    """Skipping is evaluation's: pretraining and vesper-dump-teacher still stop, naming it."""
    dataset = CroppedAudioDataset(str(corrupt["data"] / "test.tsv"), sample_rate=16000)
    with pytest.raises(ManifestError, match=r"test3\.wav \(line 5 of .*Format not recognised"):
        dataset[3]
    assert np.asarray(dataset[2]["source"]).size > 0


def test_a_run_logs_nothing_about_importing_the_plugin(corpus, tmp_path, caplog, monkeypatch):
    from fairseq import utils

    monkeypatch.setattr(utils.import_user_module, "memo", set(), raising=False)
    with caplog.at_level(logging.INFO):
        assert run(corpus, tmp_path / "ev") == 0
    assert not [r for r in caplog.records if "has already been imported" in r.getMessage()]
