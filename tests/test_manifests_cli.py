import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from corpora_fixtures import make_cremad, make_iemocap, read_lines, write_audio

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """manifests/{name}.py as a module (the scripts are files, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"manifests_{name}", REPO / "manifests" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audio_folder_cli, cremad_cli, iemocap_cli, lssed_cli, meld_cli, synthetic_cli = (
    load_script(n) for n in ["audio_folder", "cremad", "iemocap", "lssed", "meld", "synthetic"]
)


def test_cremad_cli_writes_and_prints_summary(tmp_path, capsys):
    make_cremad(tmp_path / "CREMA-D", actors=3, per_emo=1)
    rc = cremad_cli.main([str(tmp_path / "CREMA-D"), "--dest", str(tmp_path / "out"),
                          "--split", "actor"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "== CREMA-D ==" in out and "actor-disjoint" in out and "skipped:      5" in out
    assert len(read_lines(tmp_path / "out" / "test.emo")) == 6


def test_audio_folder_cli_options(tmp_path, capsys):
    write_audio(tmp_path / "in" / "a.flac", 16000)
    write_audio(tmp_path / "in" / "b.wav", 16000)
    rc = audio_folder_cli.main([str(tmp_path / "in"), "--dest", str(tmp_path / "out"),
                                "--ext", "flac", "--valid-percent", "0"])  # fmt: skip
    assert rc == 0 and "audio folder" in capsys.readouterr().out
    assert read_lines(tmp_path / "out" / "train.tsv")[1:] == ["a.flac\t16000"]


def test_synthetic_cli(tmp_path, capsys):
    rc = synthetic_cli.main([str(tmp_path / "syn"), "--dest", str(tmp_path / "out"),
                             "--speakers", "4", "--clips-per-class", "1"])  # fmt: skip
    assert rc == 0 and "held-out speakers" in capsys.readouterr().out
    assert len(read_lines(tmp_path / "out" / "test.emo")) == 8


@pytest.mark.parametrize("cli", [iemocap_cli, meld_cli, cremad_cli, lssed_cli, audio_folder_cli])
def test_bad_root_is_one_error_line(cli, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = cli.main([str(tmp_path / "empty"), "--dest", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert (
        len(err) == 1 and err[0].startswith("error: ") and "expected" in err[0] or "no " in err[0]
    )
    assert not (tmp_path / "out").exists()


def test_script_runs_as_a_file(tmp_path):
    write_audio(tmp_path / "in" / "a.wav", 16000)
    write_audio(tmp_path / "in" / "b.wav", 16000)
    proc = subprocess.run(
        [sys.executable, str(REPO / "manifests" / "audio_folder.py"), str(tmp_path / "in"),
         "--dest", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "== audio folder ==" in proc.stdout
    rows = read_lines(tmp_path / "out" / "train.tsv") + read_lines(tmp_path / "out" / "valid.tsv")
    assert sorted(rows) == sorted([str(tmp_path / "in")] * 2 + ["a.wav\t16000", "b.wav\t16000"])


def test_iemocap_cli_options_reach_the_builder(tmp_path, capsys):
    make_iemocap(tmp_path / "IEMOCAP_full_release")
    argv = [str(tmp_path / "IEMOCAP_full_release"), "--dest", str(tmp_path / "out")]
    rc = iemocap_cli.main(argv + ["--valid", "test", "--five-class", "--improvised-only"])
    out = capsys.readouterr().out
    assert rc == 0 and "valid = test" in out and "improvised dialogues only" in out
    fold = tmp_path / "out" / "fold3"
    assert (fold / "valid.tsv").read_bytes() == (fold / "test.tsv").read_bytes()
    assert [line.split()[0] for line in read_lines(fold / "dict.emo.txt")] == [
        "ang", "exc", "hap", "neu", "sad",
    ]  # fmt: skip
    assert all("impro01" in line for line in read_lines(fold / "train.tsv")[1:])
