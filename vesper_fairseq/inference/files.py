"""vesper-predict's inputs (files, folders, manifests) and outputs (TSV, CSV, JSON lines)."""

import csv
import io
import json
from pathlib import Path

from ..corpora.audio import SOUNDFILE_EXTS
from ..data.manifest_file import audio_source_problem
from ..io_utils import atomic_write_text

AUDIO_EXTS = sorted(SOUNDFILE_EXTS | {".mp4", ".m4a", ".aac", ".webm", ".mkv", ".wma"})
OUTPUT_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


def manifest_files(path: Path) -> tuple[list[Path], str | None]:
    """The audio files a fairseq manifest (any .tsv input) lists, or why it names none: it
    cannot be read, its audio folder (line 1) is gone, or it has no row."""
    try:
        with open(path, encoding="utf-8") as f:
            root = f.readline().strip()
            rels = [line.split("\t")[0] for line in f if line.strip()]
    except FileNotFoundError:
        return [], "no such manifest"
    except (OSError, UnicodeDecodeError) as e:
        return [], f"cannot be read as a manifest: {e}"
    problem = audio_source_problem(root, rels) if root else "line 1 (the audio folder) is empty"
    return ([], problem) if problem else ([Path(root) / rel for rel in rels], None)


def collect_inputs(inputs, extensions=None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Audio files named by `inputs` (files, folders searched recursively by extension, or
    manifests: any .tsv), in order without duplicates, and the inputs that name nothing, with
    why."""
    exts = {e if e.startswith(".") else "." + e for e in (extensions or AUDIO_EXTS)}
    exts = {e.lower() for e in exts}
    files, missing = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in exts and p.is_file())
            if not found:
                missing.append((str(path), f"no audio files ({', '.join(sorted(exts))})"))
            files += found
        elif path.suffix.lower() == ".tsv":
            listed, problem = manifest_files(path)
            files += listed
            if problem:
                missing.append((str(path), problem))
        else:
            files.append(path)  # a missing or unreadable file is reported when read
    seen, unique = set(), []  # one file named two ways (relative, absolute, a link) is one
    for path in files:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique, missing


def output_format(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(f"{path}: the output's extension must be one of {sorted(OUTPUT_FORMATS)}")
    return OUTPUT_FORMATS[suffix]


def table_rows(results, labels, segments: bool) -> list[list]:
    """One row per file (kind 'file') and, with segments, one per window (kind 'window')."""
    rows = []
    for name, pred in results:
        probs = [f"{pred.probabilities[c]:.6f}" for c in labels]
        n_silent = sum(s.silent for s in pred.segments)
        rows.append([name, "file", "0.000", f"{pred.duration:.3f}", pred.label, *probs,
                     len(pred.segments), n_silent, pred.aggregate])  # fmt: skip
        if segments:
            for s in pred.segments:
                probs = [f"{s.probabilities[c]:.6f}" for c in labels]
                rows.append([name, "window", f"{s.start:.3f}", f"{s.end:.3f}", s.label, *probs,
                             "", int(s.silent), ""])  # fmt: skip
    return rows


def table_header(labels) -> list[str]:
    probs = [f"p_{c}" for c in labels]
    return ["file", "kind", "start", "end", "label", *probs, "windows", "silent", "aggregate"]


def json_record(name, pred, segments: bool) -> dict:
    record = {
        "file": name,
        "label": pred.label,
        "probabilities": pred.probabilities,
        "duration": round(pred.duration, 3),
        "windows": len(pred.segments),
        "silent_windows": sum(s.silent for s in pred.segments),
        "aggregate": pred.aggregate,
    }
    if segments:
        record["segments"] = [
            {"start": s.start, "end": s.end, "label": s.label,
             "probabilities": s.probabilities, "silent": s.silent}
            for s in pred.segments
        ]  # fmt: skip
    return record


def write_predictions(path, results, labels, segments: bool = False) -> None:
    """results: [(file name, Prediction)] -> `path` (format from its extension), atomically."""
    fmt = output_format(path)
    if fmt == "jsonl":
        text = "".join(json.dumps(json_record(n, p, segments)) + "\n" for n, p in results)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
        writer.writerow(table_header(labels))
        writer.writerows(table_rows(results, labels, segments))
        text = buffer.getvalue()
    atomic_write_text(path, text)


def write_skipped(path, skipped) -> None:
    lines = ["file\treason"] + [f"{name}\t{reason}" for name, reason in skipped]
    atomic_write_text(path, "\n".join(lines) + "\n")
