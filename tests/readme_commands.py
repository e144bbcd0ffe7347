"""The shell commands, Python snippets and overrides that README.md and the example yaml headers
show, extracted so that tests/test_readme.py can run each one on tiny data.

A command's external inputs (a corpus under /data, WavLM-Large.pt, $MASTER, ...) are mapped to
tiny stand-ins through PLACEHOLDERS; everything else it reads was written by an earlier command
of the README, run in a sandbox folder in README order. A command naming an input that no table
maps fails with a message saying which table to extend.
"""

from __future__ import annotations

import re
import shlex
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import corpora_fixtures as fx
import numpy as np
import soundfile as sf
from fairseq_runs import REPO, make_tiny_teacher, write_audio_manifest

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


# ------------------------------------------------------------------------------ placeholders
def _lssed(root: Path) -> Path:
    audio = write_audio_manifest(root / "tmp", {"all": 10}, seconds=(1.0, 3.0)) / "audio"
    rows = ["file,speaker"] + [
        f"{p.name},spk{i % 3}" for i, p in enumerate(sorted(audio.iterdir()))
    ]
    (root / "LSSED").mkdir(parents=True, exist_ok=True)
    audio.rename(root / "LSSED" / "audio")
    (root / "LSSED" / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root / "LSSED"


def _any_speech(root: Path) -> Path:
    folder = root / "any_speech"
    for i in range(6):  # 44.1 kHz stereo and 8 kHz mono: the scripts convert
        fx.write_audio(folder / f"a{i}.flac", 44100 + 4410 * i, sr=44100, channels=2)
        fx.write_audio(folder / f"b{i}.wav", 12000 + 800 * i, sr=8000)
    return folder


def _labelled_table(root: Path) -> Path:
    folder, rows = root / "my_corpus", ["path,label,speaker"]
    for s in range(6):
        for c, label in enumerate(("angry", "happy", "sad")):
            for i in range(2):
                rel = f"clips/spk{s}/{label}_{i}.wav"
                fx.write_audio(folder / rel, 6000 + 200 * c + 50 * i)
                rows.append(f"{rel},{label},spk{s}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def _class_folders(root: Path) -> Path:
    for c, label in enumerate(("angry", "happy", "sad")):
        for i in range(10):
            fx.write_audio(root / "my_classes" / label / f"take{i}.flac", 13230 + 441 * c, sr=44100)
    return root / "my_classes"


def _emobox(root: Path) -> Path:
    """EmoBox's folds of IEMOCAP, and its track-2 IEMOCAP set naming the files of the
    /data/IEMOCAP_full_release stand-in."""
    from test_corpora_emobox import make_iemocap
    from test_corpora_emobox_track2 import make_iemocap_set

    make_iemocap(root / "EmoBox" / "data", root / "EmoBox")
    make_iemocap_set(root / "EmoBox" / "data")
    return root / "EmoBox"


def _recordings(root: Path) -> Path:
    for i, (sr, channels, seconds) in enumerate(((16000, 1, 1.5), (44100, 2, 9.0), (8000, 1, 3))):
        fx.write_audio(
            root / "recordings" / f"r{i}.wav", int(sr * seconds), sr=sr, channels=channels
        )
    return root / "recordings"


def _site_packages(root: Path) -> Path:
    """A folder holding unpatched fairseq 0.12.2 as pip installs it (fairseq/ and fairseq_cli/),
    from the sdist that `make install` keeps."""
    sdist = REPO / "build" / "sdist" / "fairseq-0.12.2.tar.gz"
    assert sdist.exists(), f"{sdist} is missing: run `make install` first"
    prefix = "fairseq-0.12.2/"
    with tarfile.open(sdist) as tar:
        packages = (prefix + "fairseq/", prefix + "fairseq_cli/")
        members = [m for m in tar.getmembers() if m.name.startswith(packages)]
        for member in members:
            member.name = member.name.removeprefix(prefix)
        tar.extractall(root / "site-packages", members=members, filter="data")
    return root / "site-packages"


def _folder(name: str):
    def make(root: Path) -> Path:
        (root / name).mkdir(parents=True, exist_ok=True)
        return root / name

    return make


def _corpus(maker, name):
    def make(root: Path) -> Path:
        maker(root / name)
        return root / name

    return make


def _clip(name: str, sr: int, channels: int):
    def make(root: Path) -> Path:
        path = root / "clips" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(1.5 * sr)) / sr
        wav = 0.3 * np.sin(2 * np.pi * 180 * t)[:, None].repeat(channels, 1)
        sf.write(path, wav.astype(np.float32), sr)
        return path

    return make


# placeholder as written in the README -> function(stand-in folder) that writes a tiny stand-in
# and returns its path. Add a line here when a README command reads a new external input.
PLACEHOLDERS = {
    "/data/LSSED": _lssed,
    "/data/any_speech": _any_speech,
    "/data/IEMOCAP_full_release": _corpus(fx.make_iemocap, "IEMOCAP_full_release"),
    "/data/MELD.Raw": _corpus(fx.make_meld, "MELD.Raw"),
    "/data/CREMA-D": _corpus(fx.make_cremad, "CREMA-D"),
    "/data/EmoBox": _emobox,
    "/data/my_corpus": _labelled_table,
    "/data/my_classes": _class_folders,
    "recordings/": lambda root: f"{_recordings(root)}/",
    "/models/WavLM-Large.pt": lambda root: make_tiny_teacher(root / "WavLM-Large.pt"),
    "a.wav": _clip("a.wav", 16000, 1),
    "b.wav": _clip("b.wav", 44100, 2),
    "b.flac": _clip("b.flac", 44100, 2),
    "interview.mp3": _clip("interview.mp3", 44100, 2),
    "/path/to/python3.11": lambda root: sys.executable,
    "/path/to/env": _folder("env"),
    "/path/to/site-packages": _site_packages,
    "$NODE_RANK": lambda root: "0",
    "$MASTER": lambda root: "localhost",
    "$PWD": lambda root: str(Path.cwd()),
}


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
    """`group.key=value` overrides the README shows in running text (a|b: each alternative)."""
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
                "in tests/readme_commands.py: PLACEHOLDERS['<as written>'] = a function(folder) "
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
