"""What made a vesper-cv fold's results, recorded in OUT/foldN/cv_fold.json, and what a rerun
does with it: a fold trained with the same settings is kept (an interrupted training resumes),
one trained with other settings is refused unless --overwrite removes its outputs first; its
evaluation settings (split, checkpoint) may differ, the fold is then evaluated again.

Training settings: the config file (its contents), the fairseq overrides, the upstream
encoder's weights and the fold's manifest files (their contents; the audio is not read).
"""

import hashlib
import json
import logging
import shutil
from pathlib import Path

from ..fingerprint import differences, file_digest, weights_fingerprint
from ..formats import load_encoder
from ..io_utils import write_json_atomic
from ..safe_load import CheckpointError
from .training_run import config_value

logger = logging.getLogger(__name__)
RECORD = "cv_fold.json"
OUTPUTS = (RECORD, "checkpoints", "eval", "hydra", "train.log")  # what --overwrite removes
UPSTREAM = "model.upstream_path"
# recorded, never compared: the same contents at another path are the same training
INFORMATIONAL = ("config", "data", "overrides", f"override {UPSTREAM}")


def run_settings(args) -> dict:
    """The training settings every fold shares (the upstream is read once, to fingerprint it)."""
    config = (Path(args.config_dir) / f"{args.config_name}.yaml").resolve()
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no such config (--config-dir, --config-name)")
    settings = {
        "config": str(config),
        "config_sha256": file_digest(config),
        "overrides": list(args.overrides),
        "upstream_weights": upstream_weights(config, args.overrides),
    }
    for override in args.overrides:
        key, _, value = override.lstrip("+").partition("=")
        settings[f"override {key}"] = value
    return settings


def upstream_weights(config: Path, overrides: list[str]) -> str | None:
    path = config_value(config, overrides, UPSTREAM)
    if path is None:
        return None  # fairseq-hydra-train says that it is unset
    trust = str(config_value(config, overrides, "model.trust_upstream")).lower() == "true"
    try:
        encoder = load_encoder(path, allow_pickle=trust, opt_in="model.trust_upstream=true")
    except CheckpointError as e:
        raise ValueError(f"{UPSTREAM}: {e}") from None
    return weights_fingerprint(encoder)


def fold_training(settings: dict, fold: Path) -> dict:
    """`settings` and the fold's manifests: every .tsv, .emo and dict.*.txt in its folder."""
    files = sorted(p for p in fold.iterdir() if p.is_file() and is_manifest(p.name))
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\t{file_digest(path)}\n".encode())
    return dict(settings, data=str(fold.resolve()), manifests_sha256=digest.hexdigest())


def is_manifest(name: str) -> bool:
    return name.endswith((".tsv", ".emo")) or (name.startswith("dict.") and name.endswith(".txt"))


def training_differences(recorded: dict, current: dict) -> list[str]:
    def compared(d):
        return {k: v for k, v in d.items() if k not in INFORMATIONAL}

    return differences(compared(recorded), compared(current))


def check_folds(out: Path, made_by: dict[str, dict], overwrite: bool) -> None:
    """Before any work: every fold of OUT trained with other settings than `made_by`'s (or by
    an earlier release) is refused, all of them in one message, unless `overwrite`."""
    problems = [(name, fold_problem(out / name, training)) for name, training in made_by.items()]
    problems = [f"{name}: {out / name} {problem}" for name, problem in problems if problem]
    if problems and not overwrite:
        raise ValueError(
            f"{'; '.join(problems)}: rerun with --overwrite to redo "
            f"{'these folds' if len(problems) > 1 else 'this fold'} (the checkpoints and "
            "evaluation are removed first), or use a new --out"
        )


def fold_problem(fold_out: Path, training: dict) -> str | None:
    """Why the fold's outputs cannot be kept for `training`; None when they can, or when there
    are none (a training that failed before its first checkpoint is simply started again)."""
    try:
        record = read_record(fold_out / RECORD)
    except ValueError as e:
        return f"has an unreadable record ({e})"
    if record is None:
        made = any((fold_out / name).exists() for name in ("checkpoints", "eval"))
        return "was made by an earlier vesper-cv that recorded no settings" if made else None
    diffs = training_differences(record["training"], training)
    if not diffs or not (record["trained"] or any((fold_out / "checkpoints").glob("*.pt"))):
        return None
    return f"was trained with other settings ({'; '.join(diffs)})"


def prepare_fold(fold_out: Path, training: dict, overwrite: bool) -> dict:
    """The fold's record, checked against `training`; a new one (written before the training,
    so that an interrupted one resumes only with these settings) when there is none yet or
    `overwrite` removed a mismatched one with its outputs."""
    problem = fold_problem(fold_out, training)
    if problem:
        check_folds(fold_out.parent, {fold_out.name: training}, overwrite)
        logger.warning("%s: %s %s: removing it (--overwrite)", fold_out.name, fold_out, problem)
        remove_outputs(fold_out)
    record = read_record(fold_out / RECORD)
    if record is not None and not training_differences(record["training"], training):
        return dict(record, training=training)
    return write_record(fold_out, {"training": training, "trained": False, "evaluation": None})


def remove_outputs(fold_out: Path) -> None:
    for name in OUTPUTS:  # the record first: a half-removed fold is never taken for a whole one
        path = fold_out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def read_record(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable ({e})") from None
    if not isinstance(record, dict) or not {"training", "trained", "evaluation"} <= set(record):
        raise ValueError(f"{path}: not a vesper-cv fold record")
    return record


def write_record(fold_out: Path, record: dict) -> dict:
    write_json_atomic(fold_out / RECORD, record)
    return record


def evaluation_differences(record: dict, evaluation: dict) -> list[str]:
    return differences(record["evaluation"] or {}, evaluation)
