"""benchmarks/gpu_check.sh --dry-run: the GPU check runs end to end on CPU at a tiny size."""

import json
import os
import subprocess
import sys

from fairseq_runs import REPO


def test_gpu_check_dry_run_measures_every_configuration(tmp_path):
    out = tmp_path / "gpu_check.json"
    cmd = ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--dry-run", "--json", str(out)]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHON=sys.executable),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    configs = {(r["student"], r["dtype"], r["targets"]) for r in result["training"]}
    assert configs == {
        (f"Vesper-{n}", dtype, targets)
        for n in (4, 12)
        for dtype in ("fp32", "bf16")
        for targets in ("online", "stored", "features")
    }
    for row in result["training"]:
        assert row["updates_per_s"] > 0 and row["audio_s_per_s"] > 0 and 0 < row["mfu"] < 1
    for dtype in ("float32", "bfloat16"):
        assert {"WavLM-Large", "Vesper-4", "Vesper-12"} <= set(result["rtf"][dtype])
    assert "MFU" in proc.stdout and "inference" in proc.stdout
