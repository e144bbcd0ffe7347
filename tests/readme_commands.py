"""The shell commands, Python snippets and overrides that README.md and the example yaml headers
show, extracted so that tests/test_readme.py can run each one on tiny data.

A command's external inputs (a corpus under /data, WavLM-Large.pt, $MASTER, ...) are mapped to
tiny stand-ins through PLACEHOLDERS (tests/readme_standins.py); everything else it reads was
written by an earlier command of the README, run in a sandbox folder in README order. A command
naming an input that no table maps fails with a message saying which table to extend.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from fairseq_runs import REPO
from readme_standins import PLACEHOLDERS

PROGRAMS = ("fairseq-hydra-train", "fairseq-train", "torchrun", "vesper-", "python", "make")
OVERRIDE = re.compile(r"^[a-z_]+(\.[a-z_0-9]+)+=[^\s$()`]+$")
# documented values that stand for a user's choice: the value the test uses instead
VALUE_PLACEHOLDERS = {"K": "1", "PATH": str(REPO / "vesper_fairseq")}
# Python names a README snippet uses without defining them
SNIPPET_NAMES = {
    "wav": "torch.randn(40000)",
    "samples": "np.random.default_rng(0).standard_normal(24000).astype(np.float32)",
    "wave": "np.random.default_rng(0).standard_normal((1, 32000)).astype(np.float32)",
    "padding_mask": "np.zeros((1, 32000), dtype=bool)",
}


@dataclass
class Command:
    source: str  # file:line
    text: str  # the logical line as written (continuations joined)
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    header: bool = False  # from a yaml header: checked, not run

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


class UnmappedPlaceholder(AssertionError):
    pass


# -------------------------------------------------------------------------------- extraction
def _strip_comment(line: str) -> str:
    return re.sub(r"(^|\s)#.*$", "", line).rstrip()


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Joins `\\` continuations and `for ...; do ... done` loops; drops comments and blanks."""
    out, current, start = [], "", 0
    for number, raw in lines:
        line = _strip_comment(raw)
        if not current:
            start = number
        current += (" " if current else "") + line.strip().rstrip("\\").strip()
        if line.endswith("\\") or (current.startswith("for ") and "done" not in current):
            continue
        if current:
            out.append((start, current))
        current = ""
    return out


def _expand(source: str, line: str) -> list[Command]:
    loop = re.match(r"for (\w+) in ([^;]+); do (.*?);? done(;\s*wait)?$", line)
    if loop:
        var, values, body = loop.group(1), loop.group(2).split(), loop.group(3)
        return [c for v in values for c in _expand(source, body.replace(f"${var}", v))]
    argv = shlex.split(line)
    env = {}
    while argv and re.match(r"^[A-Z_]+=", argv[0]):
        key, value = argv.pop(0).split("=", 1)
        env[key] = value
    if argv and argv[-1] == "&":
        argv.pop()
    return [Command(source, line, argv, env)]


def _inline_commands(source: str, line: str) -> list[Command]:
    """Whole commands quoted in running text: `make TARGET ...`, or a program with two or more
    arguments; program names and option fragments (`--to hf|onnx`) are prose."""
    found = []
    for code in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", line):
        try:
            argv = shlex.split(code)
        except ValueError:
            continue
        while argv and re.match(r"^[A-Z_]+=", argv[0]):
            argv.pop(0)
        if not argv or not argv[0].startswith(PROGRAMS) or "|" in code:
            continue
        if len(argv) >= (2 if argv[0] == "make" else 3):
            found += _expand(source, code)
    return found


def readme_blocks(path: Path = REPO / "README.md") -> tuple[list[Command], list[Command]]:
    """(shell commands, python snippets) of the fenced blocks and the commands quoted in the
    text, in document order."""
    commands, snippets, lang, block = [], [], None, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"^```(\w*)", line)
        if fence and lang is None:
            lang, block, first = fence.group(1), [], number + 1
        elif fence:
            if lang == "bash":
                for start, text in _logical_lines(block):
                    commands += _expand(f"{path.name}:{start}", text)
            elif lang == "python":
                snippets.append(Command(f"{path.name}:{first}", "\n".join(b for _, b in block)))
            lang = None
        elif lang is not None:
            block.append((number, line))
        else:  # a command quoted again is run once
            seen = {c.text for c in commands}
            inline = _inline_commands(f"{path.name}:{number}", line)
            commands += [c for c in inline if c.text not in seen]
    return commands, snippets


def yaml_header(path: Path) -> tuple[list[Command], list[str]]:
    """(commands, documented overrides) of a yaml's leading comment block."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.startswith("#"):
            break
        lines.append((number, line.lstrip("#")))
    name = f"{path.parent.name}/{path.name}"
    commands, overrides, in_command = [], [], False
    for number, text in lines:
        starts = text.strip().startswith(PROGRAMS)
        if starts or in_command:
            in_command = text.rstrip().endswith("\\")
            commands.append((number, text))
        else:
            overrides += [t for t in text.split() if OVERRIDE.match(t)]
    found = [
        c for n, t in _logical_lines(commands) for c in _expand(f"{name}:{n}", t)
    ]  # fmt: skip
    for command in found:
        command.header = True
    return found, overrides


def inline_overrides(path: Path = REPO / "README.md") -> list[str]:
    """`group.key=value` overrides a document (the README) shows in running text (a|b: each
    alternative)."""
    found = []
    for code in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", path.read_text()):
        try:
            parts = shlex.split(code)
        except ValueError:
            continue
        if parts and all(OVERRIDE.match(p) for p in parts):
            for part in parts:
                key, value = part.split("=", 1)
                for choice in value.split("|"):
                    found.append(f"{key}={VALUE_PLACEHOLDERS.get(choice, choice)}")
    return found


# ---------------------------------------------------------------------------- substitution
def substitute(command: Command, standins: Path, made: dict[str, str]) -> list[str]:
    """argv with every placeholder replaced by its stand-in; fails loudly on an unmapped one."""
    argv = []
    for token in command.argv:
        for placeholder, make in PLACEHOLDERS.items():
            if placeholder in token:
                if placeholder not in made:
                    made[placeholder] = str(make(standins))
                token = token.replace(placeholder, made[placeholder])
        value = token.split("=", 1)[-1]
        unmapped = value.startswith("/") and not Path(value).exists()
        if unmapped or "$" in token or re.fullmatch(r"[A-Z][A-Z_]{2,}/?", value):
            raise UnmappedPlaceholder(
                f"{command}\n  '{token}' names an input no earlier README command writes. Map it "
                "in tests/readme_standins.py: PLACEHOLDERS['<as written>'] = a function(folder) "
                "that writes a tiny stand-in there and returns its path."
            )
        argv.append(token)
    return argv


def substitute_snippet(snippet: Command, standins: Path, made: dict[str, str]) -> str:
    """The snippet's source with every quoted placeholder file name replaced by its stand-in."""
    text = snippet.text
    for placeholder, make in PLACEHOLDERS.items():
        if f'"{placeholder}"' in text:
            made.setdefault(placeholder, str(make(standins)))
            text = text.replace(f'"{placeholder}"', repr(made[placeholder]))
    return text
