"""EmoBox records: the jsonl files of its ``data/`` folder, read line by line.

A record's fields are documented in EmoBox's README (``key``, ``dataset``, ``wav``, ``emo``,
``sample_rate``, ``length``, ``num_frame``, ``channel``, ``type``, ``task``; ``start_time`` and
``end_time`` for segments). Older files spell ``wav``/``emo`` as ``audio``/``label``.
"""

import json
from pathlib import Path

from vesper_fairseq.corpora.manifest import Skipped

FIELDS = (("key",), ("wav", "audio"), ("emo", "label"))


def field_text(rec: dict, *names: str) -> str:
    """The first of ``names`` the record has, stripped ('' when absent or not text)."""
    value = next((rec[n] for n in names if n in rec), None)
    return value.strip() if isinstance(value, str) else ""


def read_jsonl(
    path: Path, shown: str, fields=FIELDS
) -> tuple[list[tuple[dict, str]], list[Skipped]]:
    """(record, where) of each good line (one with a text value for each of ``fields``: tuples
    of accepted spellings); bad lines as skipped rows naming file and line."""
    records, skipped = [], []
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # -sig: a BOM is no field
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{shown} line {n}"
            problem = None
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                rec, problem = None, f"not valid JSON ({exc.msg})"
            if problem is None and not isinstance(rec, dict):
                problem = "not a JSON object"
            if problem is None:
                missing = [names[0] for names in fields if not field_text(rec, *names)]
                if missing:
                    problem = f"no text field {', '.join(repr(m) for m in missing)}"
            if problem:
                skipped.append(Skipped(f"{shown}:{n}", f"bad-row: {where}: {problem}"))
            else:
                records.append((rec, where))
    return records, skipped


def record_segment(rec: dict) -> tuple[float, float] | None | str:
    """(start, end) seconds of a segment record, None for a whole file, or the problem."""
    if "start_time" not in rec and "end_time" not in rec:
        return None
    try:
        start, end = float(rec["start_time"]), float(rec["end_time"])
    except (KeyError, TypeError, ValueError):
        return "start_time and end_time must both be numbers"
    if not 0 <= start < end < float("inf"):
        return f"segment {start:g}..{end:g} s is empty or negative"
    return start, end
