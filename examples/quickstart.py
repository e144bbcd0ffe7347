"""The whole Vesper job end to end on a small embedded default (`make demo`).

    python examples/quickstart.py [--out demo_out] [--data MANIFESTS] [--teacher WavLM.pt]

1. data      a synthetic "emotional speech" corpus (4 classes differing in prosody, 8 speakers)
             and its manifests, written by the same library code as manifests/
2. teacher   a small randomly initialised WavLM in the original checkpoint format
3. pretrain  Vesper with fairseq-hydra-train and examples/pretraining/tiny.yaml
4. export    the pretrained encoder as a standalone safetensors folder (vesper-export)
5. finetune  the emotion classifier on the exported Vesper and, as the baseline, on the teacher
6. evaluate  both on held-out speakers (vesper-evaluate): WA / UA / WF1, confusion matrix

Each stage records its inputs (options and the content of the files it reads) in a stages/
folder next to its output; it is skipped when its output exists and its inputs are unchanged,
redone (saying what changed) when they differ, and continued after an interruption: rerun it.
With --data (a folder of train/valid/test .tsv + .emo + dict.emo.txt from manifests/) and
--teacher (e.g. WavLM-Large.pt) it runs on real data; use a GPU and the vesper4 recipe then.
"""

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from vesper_fairseq.cli.fairseq_command import hydra_train_command
from vesper_fairseq.cli.training_run import planned_updates, run_training
from vesper_fairseq.corpora import synthetic
from vesper_fairseq.fingerprint import differences
from vesper_fairseq.formats.wavlm_checkpoint import save_wavlm_checkpoint
from vesper_fairseq.io_utils import atomic_write_text, write_json_atomic
from vesper_fairseq.logging_setup import argument_parser, setup_logging
from vesper_fairseq.modules.wavlm import WavLMEncoder
from vesper_fairseq.modules.wavlm_config import tiny_wavlm_config

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = REPO / "examples"
logger = logging.getLogger("quickstart")


def content_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's file names and contents (hidden files left out)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for file in files:
        name = file.relative_to(path) if path.is_dir() else Path(file.name)
        if any(part.startswith(".") for part in name.parts):
            continue
        digest.update(f"{name}\n".encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def stage(key: str, name: str, done: Path, inputs: dict, outputs: list[Path]) -> bool:
    """Prints the stage header; False (skip the stage) when its output `done` exists and was
    made from the same `inputs` (recorded in stages/KEY.json beside the first output).
    Outputs made from other inputs are removed first."""
    record = outputs[0].parent / "stages" / f"{key}.json"
    recorded = json.loads(record.read_text()) if record.exists() else None
    inputs = json.loads(json.dumps(inputs, default=str))
    if recorded == inputs and done.exists():
        print(f"\n==> {name}: done already ({done})", flush=True)
        return False
    stale = [p for p in outputs if p.exists()]
    if recorded != inputs and stale:
        changes = differences(recorded or {}, inputs) if recorded else ["not recorded"]
        print(f"\n==> {name}: inputs changed ({'; '.join(changes)}): redoing it", flush=True)
        for path in stale:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    else:
        print(f"\n==> {name}", flush=True)
    write_json_atomic(record, inputs)  # before the work: an interrupted stage continues
    return True


def run(cmd: list, log: Path) -> None:
    """Runs a console script with its output to `log`; on failure shows the log's tail."""
    cmd = [str(c) for c in cmd]
    print("$ " + " ".join(cmd), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f"{cmd[0]} failed ({code}); the end of {log}:\n{log.read_text()[-3000:]}")


def make_data(out: Path, speakers: int, clips_per_class: int) -> Path:
    data = out / "manifests"
    inputs = {"speakers": speakers, "clips_per_class": clips_per_class, "seed": 0}
    title = "data: synthetic emotional speech and its manifests"
    if stage("data", title, data / "dict.emo.txt", inputs, [data, out / "corpus"]):
        synthetic.generate(out / "corpus", speakers, clips_per_class, seed=0)
        print(synthetic.build(out / "corpus", data, n_test_speakers=2, n_valid_speakers=1))
    return data


def make_teacher(out: Path) -> Path:
    teacher = out / "teacher.pt"
    title = "teacher: a small random WavLM (original checkpoint format)"
    inputs = {"config": tiny_wavlm_config().to_dict(), "seed": 0}
    if stage("teacher", title, teacher, inputs, [teacher]):
        torch.manual_seed(0)
        save_wavlm_checkpoint(WavLMEncoder(tiny_wavlm_config()), teacher)
    return teacher


def hydra_train(key: str, config: Path, save_dir: Path, overrides: list[str], inputs: dict) -> None:
    done = save_dir / "DONE"
    inputs = dict(inputs, config=content_digest(config), overrides=overrides)
    if not stage(key, f"train {config.stem} -> {save_dir}", done, inputs, [save_dir]):
        return
    cmd = hydra_train_command(config.parent, config.stem, save_dir, *overrides)
    print("$ " + " ".join(cmd), flush=True)
    label = f"{config.parent.name}/{config.stem}"
    run_training(cmd, save_dir / "train.log", label, planned_updates(config, overrides))
    atomic_write_text(done, time.strftime("%Y-%m-%d %H:%M:%S\n"))


def export(checkpoint: Path, out: Path) -> Path:
    title = "export: the pretrained encoder as safetensors + JSON"
    inputs = {"checkpoint": str(checkpoint), "checkpoint_sha256": content_digest(checkpoint)}
    if stage("export", title, out / "config.json", inputs, [out]):
        run(
            [BIN / "vesper-export", checkpoint, "--to", "vesper", "--out", out],
            out.parent / "export.log",
        )
    return out


def evaluate(checkpoint: Path, data: Path, out: Path) -> dict:
    title = f"evaluate {checkpoint.parent.name} on the held-out test speakers"
    inputs = {"checkpoint_sha256": content_digest(checkpoint), "data": content_digest(data)}
    if stage(f"evaluate_{out.name}", title, out / "metrics.json", inputs, [out]):
        cmd = [BIN / "vesper-evaluate", checkpoint, "--data", data, "--split", "test", "--out", out]
        run(cmd, out.parent / f"{out.name}.log")
    return json.loads((out / "metrics.json").read_text())


def report(results: dict[str, dict], out: Path, data: Path, teacher: Path) -> None:
    print("\n==> results on the test speakers (frozen upstream, same head)\n")
    print(f"  {'upstream':<22}{'WA':>8}{'UA':>8}{'WF1':>8}")
    for name, m in results.items():
        print(f"  {name:<22}{100 * m['wa']:>8.2f}{100 * m['ua']:>8.2f}{100 * m['wf1']:>8.2f}")
    print()
    for what, path in (
        ("manifests", data),
        ("teacher", teacher),
        ("pretraining", out / "pretrain"),
        ("exported Vesper", out / "vesper"),
        ("classifiers", out / "finetune"),
        ("evaluations", out / "eval"),
        ("confusion matrix", out / "eval" / "vesper" / "confusion.png"),
    ):
        print(f"  {what + ':':<18}{path}")


def main(argv=None) -> None:
    setup_logging()
    parser = argument_parser(None, __doc__)
    parser.add_argument("--out", type=Path, default=REPO / "demo_out")
    parser.add_argument("--data", type=Path, help="manifest folder (default: synthetic corpus)")
    parser.add_argument("--teacher", type=Path, help="WavLM checkpoint (default: tiny random)")
    parser.add_argument("--pretrain-config", type=Path, default=EXAMPLES / "pretraining/tiny.yaml")
    parser.add_argument("--finetune-config", type=Path, default=EXAMPLES / "finetuning/tiny.yaml")
    parser.add_argument("--speakers", type=int, default=8, help="synthetic corpus speakers")
    parser.add_argument("--clips-per-class", type=int, default=10, help="per synthetic speaker")
    parser.add_argument("--pretrain-updates", type=int, help="override the config's max_update")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    data = args.data.resolve() if args.data else make_data(out, args.speakers, args.clips_per_class)
    teacher = args.teacher.resolve() if args.teacher else make_teacher(out)
    overrides = [f"task.data={data}", f"task.teacher_path={teacher}"]
    if args.pretrain_updates:
        overrides.append(f"optimization.max_update={args.pretrain_updates}")
    sources = {"data": content_digest(data), "teacher": content_digest(teacher)}
    hydra_train("pretrain", args.pretrain_config, out / "pretrain", overrides, sources)
    vesper = export(out / "pretrain" / "checkpoint_last.pt", out / "vesper")
    results = {}
    for name, upstream in (("vesper", vesper), ("teacher", teacher)):
        save_dir = out / "finetune" / name
        overrides = [f"task.data={data}", f"model.upstream_path={upstream}"]
        inputs = {"data": sources["data"], "upstream": content_digest(upstream)}
        hydra_train(f"finetune_{name}", args.finetune_config, save_dir, overrides, inputs)
        results[name] = evaluate(save_dir / "checkpoint_best.pt", data, out / "eval" / name)
    labels = {"vesper": "Vesper (pretrained)", "teacher": "WavLM teacher (raw)"}
    report({labels[k]: v for k, v in results.items()}, out, data, teacher)
    print(f"\n  demo finished in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
