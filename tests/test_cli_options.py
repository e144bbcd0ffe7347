"""Console-script options are checked before any work: one line naming the option, nothing
written."""

import re

import pytest

from vesper_fairseq.cli import cv, dump_teacher, evaluate, export, extract, predict


@pytest.mark.parametrize(
    "script, argv, message",
    [
        (evaluate, ["{ckpt}", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (evaluate, ["{ckpt}", "--num-workers", "-1"], "--num-workers must be >= 0, got -1"),
        (evaluate, ["{ckpt}", "--device", "gpu7"], "--device 'gpu7' is not a device"),
        (cv, ["{tmp}", "--config-dir", "{tmp}", "--config-name", "x", "--batch-size", "0"],
         "--batch-size must be >= 1"),
        (cv, ["{tmp}/none", "--config-dir", "{tmp}", "--config-name", "x"], "none is not a folder"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--max-chunk", "-1"],
         "--max-chunk must be a number >= 0, got -1.0"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--max-chunk", "inf"],
         "--max-chunk must be a number >= 0, got inf"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--context", "-3"],
         "--context must be >= 0, got -3"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--batch-size", "0"],
         "--batch-size must be >= 1, got 0"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--save-every", "nan"],
         "--save-every must be a number >= 0, got nan"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--shard", "3"],
         r"--shard 3 is not in \[0, --num-shards 1\)"),
        (extract, ["--encoder", "{ckpt}", "--audio", "{ckpt}", "--device", "gpu7"],
         "--device 'gpu7' is not a device"),
        (dump_teacher, ["{tmp}", "--teacher", "{ckpt}", "--device", "gpu7"],
         "--device 'gpu7' is not a device"),
        (predict, ["{ckpt}", "{ckpt}", "--hop", "inf"], r"--hop \(seconds\) must be a number > 0"),
        (predict, ["{ckpt}", "{ckpt}", "--hop", "nan"], r"--hop \(seconds\) must be a number > 0"),
        (predict, ["{ckpt}", "{ckpt}", "--silence-db", "nan"], "--silence-db must be a number"),
        (predict, ["{ckpt}", "{ckpt}", "--ext", ""], "--ext: expected comma-separated"),
        (predict, ["{ckpt}", "{ckpt}", "--device", "gpu7"], "--device 'gpu7' is not a device"),
        (export, ["{ckpt}", "--to", "vesper", "--layers", "2"], "--layers 2 chooses the"),
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
