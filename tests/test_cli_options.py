"""Console-script options are checked before any work: one line naming the option, nothing
written."""

import re

import pytest

from vesper_fairseq.cli import cv, evaluate


@pytest.mark.parametrize(
    "script, argv, message",
    [
        (evaluate, ["{ckpt}", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (evaluate, ["{ckpt}", "--num-workers", "-1"], "--num-workers must be >= 0, got -1"),
        (evaluate, ["{ckpt}", "--device", "gpu7"], "--device 'gpu7' is not a device"),
        (cv, ["{tmp}", "--config-dir", "{tmp}", "--config-name", "x", "--batch-size", "0"],
         "--batch-size must be >= 1"),
        (cv, ["{tmp}/none", "--config-dir", "{tmp}", "--config-name", "x"], "none is not a folder"),
    ],
)  # fmt: skip
def test_bad_options_fail_at_once(tmp_path, capsys, script, argv, message):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"")
    argv = [a.format(tmp=tmp_path, ckpt=ckpt) for a in argv] + ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as e:
        script.parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err.strip().splitlines()[-1])
    assert not (tmp_path / "out").exists()
