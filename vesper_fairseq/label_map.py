"""Label maps: rename and merge emotion classes between corpora, or drop some.

A map is given as a JSON object file (``{"ANG": "ang", "DIS": null}``), a text file with one
``source=target`` per line (``#`` starts a comment), or inline as ``ANG=ang,HAP=hap``. A target
that is empty (``DIS=``) or JSON ``null`` drops the class. Labels the map does not name keep
their name. The map is applied once (``a=b,b=c`` sends ``a`` to ``b``, not to ``c``).
"""

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .io_utils import atomic_write_text


class LabelMapError(ValueError):
    """A label map that cannot be read; the message names the file (and line) and the problem."""


@dataclass
class LabelMap:
    mapping: dict[str, str | None] = field(default_factory=dict)
    source: str = ""

    def apply(self, label: str) -> str | None:
        """The mapped label, or None when the map drops it."""
        return self.mapping.get(label, label)

    def check_names(self, labels, where: str) -> None:
        """Refuses a map naming a label that is not among ``labels`` (a typo, another corpus)."""
        known = set(labels)
        unknown = [k for k in self.mapping if k not in known]
        if unknown:
            raise LabelMapError(
                f"the label map names {', '.join(unknown)}, not a label of {where} "
                f"({', '.join(sorted(known))})"
            )

    def targets(self) -> list[str]:
        """The target classes in the order they first appear in the map."""
        return list(dict.fromkeys(t for t in self.mapping.values() if t is not None))

    def describe(self) -> str:
        parts = [f"{k}={'' if v is None else v}" for k, v in self.mapping.items()]
        return ",".join(parts)


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot be a class in dict.emo.txt (``label count`` lines), or None."""
    if not label or any(c.isspace() for c in label):
        return f"label {label!r} is empty or contains white space (dict.emo.txt cannot hold it)"
    return None


def _check_name(name, where: str) -> str:
    if not isinstance(name, str):
        raise LabelMapError(f"{where}: labels must be strings, got {name!r}")
    name = name.strip()
    if any(c.isspace() for c in name):
        raise LabelMapError(f"{where}: label {name!r} contains white space")
    return name


def _add(mapping: dict, key, value, where: str) -> None:
    key = _check_name(key, where)
    if not key:
        raise LabelMapError(f"{where}: empty source label")
    if key in mapping:
        raise LabelMapError(f"{where}: label {key!r} is mapped twice")
    value = None if value is None else _check_name(value, where)
    mapping[key] = value or None


def _parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, str | None]:
    """``(text, where)`` items of the form ``source=target``."""
    mapping: dict[str, str | None] = {}
    for text, where in pairs:
        if "=" not in text:
            raise LabelMapError(f"{where}: expected source=target, got {text!r}")
        key, value = text.split("=", 1)
        _add(mapping, key, value, where)
    return mapping


def read_json_map(path: Path) -> dict[str, str | None]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelMapError(f"{path}: cannot read the label map ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LabelMapError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise LabelMapError(f"{path}: a label map must be a JSON object {{source: target}}")
    mapping: dict[str, str | None] = {}
    for key, value in data.items():
        _add(mapping, key, value, str(path))
    return mapping


def parse_label_map(spec: str | os.PathLike | None) -> LabelMap:
    """Reads a map from a ``.json`` file, an ``a=b`` text file, or an inline ``a=b,c=d`` list."""
    if spec is None or str(spec).strip() == "":
        return LabelMap()
    spec = str(spec)
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() == ".json":
            return LabelMap(read_json_map(path), str(path.resolve()))
        lines = path.read_text(encoding="utf-8").splitlines()
        pairs = [
            (line.split("#", 1)[0].strip(), f"{path}, line {n}")
            for n, line in enumerate(lines, start=1)
        ]
        return LabelMap(_parse_pairs([p for p in pairs if p[0]]), str(path.resolve()))
    if "=" not in spec:
        raise LabelMapError(f"label map {spec!r}: no such file, and not an a=b,c=d list")
    items = [item.strip() for item in spec.split(",") if item.strip()]
    return LabelMap(_parse_pairs([(item, f"label map {spec!r}") for item in items]), spec)


@dataclass
class Remapped:
    """A split rewritten in a model's classes: where it is, and what was left out."""

    data: Path
    kept: int
    left_out: Counter  # original label -> rows left out (the model does not know its class)
    dropped: Counter  # original label -> rows the map dropped


def remap_split(
    data: Path, split: str, model_labels: list[str], label_map: LabelMap, dest: Path
) -> Remapped:
    """Writes ``dest/{split}.tsv/.emo`` and ``dest/dict.emo.txt`` holding the rows of ``data``'s
    split whose mapped label is one of ``model_labels``; the other rows are counted, not kept."""
    data, dest = Path(data), Path(dest)
    tsv, emo = data / f"{split}.tsv", data / f"{split}.emo"
    for path in (tsv, emo):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
    lines = tsv.read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines[1:] if line.strip()]
    labels = [line.strip() for line in emo.read_text(encoding="utf-8").splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if len(labels) != len(rows):
        raise ValueError(f"{emo}: {len(labels)} labels for {len(rows)} rows of {tsv}")
    known = set(model_labels)
    kept_rows, kept_labels, left_out, dropped = [], [], Counter(), Counter()
    for row, label in zip(rows, labels):
        target = label_map.apply(label)
        if target is None:
            dropped[label] += 1
        elif target not in known:
            left_out[label] += 1
        else:
            kept_rows.append(row)
            kept_labels.append(target)
    if not kept_rows:
        raise ValueError(
            f"{emo}: no row has a label the model knows ({', '.join(model_labels)}) after the "
            f"label map; labels found: {', '.join(sorted(set(labels)))} (pass --label-map)"
        )
    counts = Counter(kept_labels)
    atomic_write_text(dest / f"{split}.tsv", "\n".join([lines[0], *kept_rows]) + "\n")
    atomic_write_text(dest / f"{split}.emo", "".join(f"{label}\n" for label in kept_labels))
    atomic_write_text(
        dest / "dict.emo.txt", "".join(f"{label} {counts[label]}\n" for label in model_labels)
    )
    return Remapped(dest, len(kept_rows), left_out, dropped)
