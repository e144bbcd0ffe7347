"""The demo runs end to end, and after being killed mid-way, continues."""

import os
import signal
import subprocess
import sys
import time

import pytest
from fairseq_runs import REPO

pytestmark = pytest.mark.slow
SMALL = ["--speakers", "5", "--clips-per-class", "4", "--pretrain-updates", "40"]


def quickstart(out, **kwargs):
    cmd = [sys.executable, str(REPO / "examples" / "quickstart.py"), "--out", str(out), *SMALL]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def test_demo_killed_during_pretraining_continues_to_the_results(tmp_path):
    out = tmp_path / "demo"
    first = quickstart(out)
    last, deadline = out / "pretrain" / "checkpoint_last.pt", time.time() + 300
    try:
        while not last.exists():
            assert first.poll() is None, first.stdout.read()[-3000:]
            assert time.time() < deadline, "no checkpoint after 5 minutes"
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the demo and the training it started
        first.wait()
    assert not (out / "pretrain" / "DONE").exists()

    second = quickstart(out)
    log, _ = second.communicate(timeout=900)
    assert second.returncode == 0, log[-4000:]
    assert "data: synthetic emotional speech and its manifests: done already" in log
    assert "Loaded checkpoint" in log and "checkpoint_last.pt" in log
    table = log[log.index("results on the test speakers") :]
    for row in ("Vesper (pretrained)", "WavLM teacher (raw)"):
        assert row in table
    for name in ("vesper", "teacher"):
        assert (out / "eval" / name / "metrics.json").exists()
        assert (out / "eval" / name / "confusion.png").stat().st_size > 10_000
    assert (out / "vesper" / "model.safetensors").exists()

    third = quickstart(out)
    log, _ = third.communicate(timeout=300)
    assert third.returncode == 0 and log.count("done already") == 8, log[-3000:]
