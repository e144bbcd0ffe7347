"""Metadata csv files (MELD, LSSED): every row with its line number, every problem named."""

import csv
from dataclasses import dataclass
from pathlib import Path

from vesper_fairseq.corpora.manifest import CorpusLayoutError

SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon"}


class CorpusFileError(CorpusLayoutError):
    """A corpus file that cannot be parsed; the message names the file and line."""


@dataclass
class CsvRow:
    line: int  # where the row starts in the file (1 = header)
    values: dict[str, str]  # stripped column -> stripped value ("" for absent fields)
    problem: str | None = None  # e.g. more fields than the header: the row is not usable


def read_csv_table(path: Path, delimiter: str = ",") -> tuple[list[str], list[CsvRow]]:
    """The header's columns and every non-blank row of a csv (or tsv) with a header line."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        # tab-separated files hold no quoting: a field may begin with a quote mark
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.reader(f, delimiter=delimiter, strict=True, quoting=quoting)
        records = []
        start = 1
        try:
            for fields in reader:
                records.append((start, fields))
                start = reader.line_num + 1
        except csv.Error as exc:
            separator = SEPARATORS.get(delimiter, repr(delimiter))
            raise CorpusFileError(
                f"{path}, line {start}: {exc} (expected {separator}"
                '-separated fields, each quoted field closed by a " before the next separator '
                "or line end)"
            ) from None
    records = [(n, fields) for n, fields in records if any(x.strip() for x in fields)]
    if not records:
        raise CorpusFileError(f"{path}, line 1: expected a header row naming the columns")
    columns = [c.strip() for c in records[0][1]]
    rows = []
    for line, fields in records[1:]:
        values = {c: (fields[i].strip() if i < len(fields) else "") for i, c in enumerate(columns)}
        problem = None
        if len(fields) != len(columns):
            problem = f"{len(fields)} fields where the header has {len(columns)}"
        rows.append(CsvRow(line, values, problem))
    return columns, rows
