"""A manifest that names no audio (its audio folder, line 1, is gone; or it holds no rows) and
file names a manifest cannot hold are errors that name the file, in every tool that reads
audio: vesper-predict, vesper-extract, vesper-evaluate, vesper-dump-teacher."""

import re

import numpy as np
import pytest
import soundfile as sf
import torch
from classifier_fixtures import LABELS, make_tiny_classifier, speech_like
from fairseq_runs import make_tiny_teacher

from vesper_fairseq.cli import dump_teacher, evaluate, extract, predict
from vesper_fairseq.formats.vesper_folder import save_vesper_folder
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

NO_ROWS = "holds no audio rows (only line 1, the audio folder)"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("empty_inputs")
    audio = root / "audio"
    audio.mkdir()
    sf.write(audio / "a.wav", speech_like(1.0), 16000)
    torch.manual_seed(0)
    save_vesper_folder(WavLMEncoder(tiny_wavlm_config()).eval(), root / "encoder")
    manifests = root / "m"
    manifests.mkdir()
    (manifests / "empty.tsv").write_text(f"{audio}\n")
    (manifests / "moved.tsv").write_text(f"{root}/gone\na.wav\t16000\n")
    return {
        "root": root,
        "audio": audio,
        "encoder": root / "encoder",
        "classifier": make_tiny_classifier(root / "clf.pt"),
        "empty": manifests / "empty.tsv",
        "moved": manifests / "moved.tsv",
        "gone": root / "gone",
    }


def test_vesper_predict_reports_a_manifest_that_names_no_audio(files, tmp_path, caplog):
    """Any .tsv is a manifest (never decoded as audio); like an empty folder, one that names
    no audio is reported and listed, and with nothing classified the exit status is 1."""
    out = tmp_path / "p.tsv"
    moved, empty = files["moved"], files["empty"]
    argv = [str(files["classifier"]), str(moved), str(empty), "--out", str(out), "--quiet"]
    assert predict.main(argv) == 1
    skipped = (tmp_path / "p.tsv.skipped.tsv").read_text().splitlines()[1:]
    assert skipped == [
        f"{moved}\tits audio folder {files['gone']} (line 1) does not exist",
        f"{empty}\t{NO_ROWS}",
    ]
    assert f"skipped {empty}: {NO_ROWS}" in caplog.text
    assert "InvalidDataError" not in caplog.text
    assert predict.main(argv[:3] + [str(files["audio"]), "--out", str(out), "--quiet"]) == 0


@pytest.mark.parametrize(
    "manifest, problem",
    [("empty", re.escape(NO_ROWS)), ("moved", r"its audio folder .*gone \(line 1\)")],
)
def test_vesper_extract_refuses_a_manifest_that_names_no_audio(files, tmp_path, manifest, problem):
    argv = ["--encoder", str(files["encoder"]), "--out", str(tmp_path / "feats")]
    with pytest.raises(SystemExit, match=f"{files[manifest]}: {problem}"):
        extract.main(argv + ["--manifest", str(files[manifest])])
    assert not (tmp_path / "feats").exists()  # no finished 0-row output


@pytest.mark.parametrize("char, problem", [("\t", "contains a tab"), ("\n", "line break")])
def test_vesper_extract_refuses_audio_names_a_manifest_cannot_hold(files, tmp_path, char, problem):
    """The output's .tsv is a manifest: a TAB or NEWLINE in a name would break its rows."""
    bad = tmp_path / f"x{char}y.wav"
    sf.write(bad, speech_like(0.5), 16000)
    argv = ["--encoder", str(files["encoder"]), "--out", str(tmp_path / "feats")]
    named = re.escape(f"{ascii(str(bad))}: name not representable in a fairseq manifest")
    with pytest.raises(SystemExit, match=f"{named} .*{problem}"):
        extract.main(argv + ["--audio", str(files["audio"] / "a.wav"), str(bad)])
    assert not (tmp_path / "feats").exists()


def test_vesper_evaluate_refuses_a_split_that_names_no_audio(files, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "dict.emo.txt").write_text("".join(f"{label} 1\n" for label in LABELS))
    (data / "test.emo").write_text("")
    argv = [str(files["classifier"]), "--data", str(data), "--out", str(tmp_path / "e")]
    for source, problem in [("empty", NO_ROWS), ("moved", "its audio folder")]:
        (data / "test.tsv").write_text(files[source].read_text())
        assert evaluate.main(argv) == 2
        err = capsys.readouterr().err
        assert f"{data / 'test.tsv'}: {problem}" in err and "Traceback" not in err


def test_vesper_dump_teacher_refuses_a_manifest_that_names_no_audio(files, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text(files["empty"].read_text())
    teacher = make_tiny_teacher(tmp_path / "teacher.pt")
    argv = [str(data), "--teacher", str(teacher), "--out", str(tmp_path / "store")]
    with pytest.raises(SystemExit, match=re.escape(f"{data / 'train.tsv'}: {NO_ROWS}")):
        dump_teacher.main(argv)
    assert not (tmp_path / "store").exists()


def test_a_manifest_of_absolute_paths_needs_no_audio_folder(files, tmp_path):
    """fairseq joins the root and a row: an absolute row stands alone."""
    manifest = tmp_path / "absolute.tsv"
    manifest.write_text(f"{files['gone']}\n{files['audio'] / 'a.wav'}\t16000\n")
    out = tmp_path / "feats"
    extract.main(["--encoder", str(files["encoder"]), "--manifest", str(manifest), "--layers",
                  "0", "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert np.load(out / "absolute_0_1.layer0.npy").shape[0] > 0
