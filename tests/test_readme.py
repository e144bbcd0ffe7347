"""The README is executable documentation: every command it and the example yaml headers show
runs as written on tiny data (training for two updates), in README order in one folder; repeated
trainings, multi-GPU / multi-node lines and the yaml headers' commands are checked up to the
composed config (or the parsed options); every documented override composes and takes effect."""

import argparse
import importlib
import os
import re
import runpy
import shlex
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from fairseq_runs import BIN, REPO, run
from omegaconf import OmegaConf
from readme_commands import (
    SNIPPET_NAMES,
    UnmappedPlaceholder,
    inline_overrides,
    readme_blocks,
    substitute,
    substitute_snippet,
    yaml_header,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*validated against ConfigStore schema"),
    pytest.mark.filterwarnings(r"ignore:\s*version_base=.1.1. selects Hydra 1.1"),
]
EXAMPLES = sorted((REPO / "examples").glob("*/*.yaml"))
COMMANDS, SNIPPETS = readme_blocks()
for _yaml in EXAMPLES:
    COMMANDS += yaml_header(_yaml)[0]
# test-only additions that keep a documented run tiny
TINY_TRAINING = ["optimization.max_update=2", "dataset.num_workers=0", "dataset.batch_size=4"]
ENTRY_POINTS = dict(re.findall(r'"([\w-]+) = ([\w.]+:\w+)"', (REPO / "setup.py").read_text()))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("readme")
    work = root / "work"
    work.mkdir()
    for name in ("vesper_fairseq", "examples"):
        (work / name).symlink_to(REPO / name)
    return {"work": work, "standins": root / "standins", "made": {}, "trained": set()}


@contextmanager
def cwd(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def plugin_realpath(args: list[str]) -> list[str]:
    """In this process the plugin is imported from the repository: name it by its real path."""
    return [str(REPO / "vesper_fairseq") if a == "vesper_fairseq" else a for a in args]


def compose(args: list[str]):
    """fairseq-hydra-train's config for `args`, up to fairseq's add_defaults (no training)."""
    from fairseq.dataclass.initialize import add_defaults, hydra_init
    from fairseq_cli.hydra_train import _prepare_argv
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    parsed = get_args_parser().parse_args(_prepare_argv(plugin_realpath(args)))
    hydra_init(parsed.config_name)
    GlobalHydra.instance().clear()
    config_dir = str(Path(parsed.config_dir).resolve())
    with warnings.catch_warnings(), initialize_config_dir(config_dir, version_base="1.1"):
        warnings.filterwarnings("ignore", message=r"\s*'.*' is validated against ConfigStore")
        cfg = hydra_compose(parsed.config_name, overrides=parsed.overrides)
    add_defaults(cfg)
    return cfg


class Parsed(Exception):
    pass


def call_main(program: str, args: list[str], parse_only: bool, monkeypatch):
    """A console script (setup.py entry point) or manifests/*.py in this process."""
    if parse_only:
        original = argparse.ArgumentParser.parse_args

        def parse_then_stop(self, *a, **k):
            original(self, *a, **k)
            raise Parsed

        monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        if program in ENTRY_POINTS:
            module, func = ENTRY_POINTS[program].split(":")
            code = getattr(importlib.import_module(module), func)(args)
        else:
            monkeypatch.setattr(sys, "argv", [program, *args])
            runpy.run_path(str(REPO / program), run_name="__main__")
            code = 0
    except Parsed:
        code = 0
    except SystemExit as stop:
        code = stop.code
    finally:
        monkeypatch.undo()
    assert not code, f"{program} exited with {code}"


def run_hydra(command, argv, sandbox):
    config = argv[argv.index("--config-name") + 1] if "--config-name" in argv else None
    multi = any(re.match(r".*distributed_world_size=([2-9]|\d\d)", a) for a in argv)
    if command.header or "..." in argv or multi or config in sandbox["trained"]:
        base = sandbox.get("last_hydra", [])
        args = [a for a in argv[1:] if a != "..."]
        compose(base + args if "..." in argv else args)
        return
    sandbox["trained"].add(config)
    sandbox["last_hydra"] = argv[1:]
    run([BIN / "fairseq-hydra-train", *argv[1:], *TINY_TRAINING], cwd=Path.cwd())


def run_make(args: list[str], monkeypatch):
    """`make -n`: the recipe is printed, not run; a repository script it would run gets its
    options parsed, and the repository files they name must exist."""
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    for line in dry.stdout.splitlines():
        argv = shlex.split(line)
        if len(argv) > 1 and argv[0].endswith("/python") and (REPO / argv[1]).is_file():
            named = [a for a in argv[2:] if re.fullmatch(r"[\w./-]+\.(yaml|py)", a)]
            assert all((REPO / a).is_file() for a in named), f"{line}: a file it names is missing"
            call_main(argv[1], argv[2:], True, monkeypatch)


def run_command(command, sandbox, monkeypatch):
    argv = substitute(command, sandbox["standins"], sandbox["made"])
    program = argv[0]
    if program == "fairseq-hydra-train":
        run_hydra(command, argv, sandbox)
    elif program == "torchrun":  # multi-process: up to the composed config
        args = argv[argv.index("fairseq_cli.hydra_train") + 1 :]
        base = sandbox.get("last_hydra", [])
        compose([*base, *[a for a in args if "=..." not in a]] if "..." in " ".join(args) else args)
    elif program == "fairseq-train":
        from fairseq import options
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf

        parser = options.get_training_parser()
        convert_namespace_to_omegaconf(
            options.parse_args_and_arch(parser, plugin_realpath(argv[1:]))
        )
    elif program == "make":
        run_make(argv[1:], monkeypatch)
    elif program == "python" and (REPO / argv[1]).is_file():
        call_main(argv[1], argv[2:], command.header, monkeypatch)
    elif program in ENTRY_POINTS:
        args, parse_only = argv[1:], command.header
        if program == "vesper-cv":  # one fold, two updates; a config trained already: parsed
            config = args[args.index("--config-name") + 1]
            parse_only = parse_only or f"cv {config}" in sandbox["trained"]
            sandbox["trained"].add(f"cv {config}")
            cut = args.index("--") if "--" in args else len(args)
            args = [*args[:cut], "--folds", "fold1", "--", *args[cut + 1 :], *TINY_TRAINING]
        call_main(program, args, parse_only, monkeypatch)
    else:
        raise UnmappedPlaceholder(
            f"{command}\n  no runner for '{program}': add one to run_command in "
            "tests/test_readme.py"
        )


@pytest.fixture(scope="module")
def outcomes(sandbox):
    """Every command run in README order; one whose input a later section writes (the README
    shows vesper-predict before fine-tuning) is retried once after the others."""
    results, retry = {}, []
    with cwd(sandbox["work"]), pytest.MonkeyPatch.context() as monkeypatch:
        for attempt in (0, 1):
            for command in COMMANDS if attempt == 0 else retry:
                try:
                    run_command(command, sandbox, monkeypatch)
                    results[command.source, command.text] = None
                except UnmappedPlaceholder as err:
                    results[command.source, command.text] = err
                except Exception as err:  # noqa: BLE001 - reported by the test of the command
                    results[command.source, command.text] = err
                    if attempt == 0:
                        retry.append(command)
    return results


@pytest.mark.parametrize("command", COMMANDS, ids=[c.source for c in COMMANDS])
def test_documented_command_runs_as_written(command, outcomes):
    error = outcomes[command.source, command.text]
    if error is not None:
        raise AssertionError(f"{command}\n{type(error).__name__}: {error}") from error


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.source for s in SNIPPETS])
def test_readme_python_snippet_runs(snippet, sandbox, outcomes):
    """After every command (`outcomes`): the snippets read what the commands wrote."""
    names = {"__name__": "readme"}
    exec("import numpy as np, torch", names)
    names.update({k: eval(v, names) for k, v in SNIPPET_NAMES.items()})
    text = substitute_snippet(snippet, sandbox["standins"], sandbox["made"])
    with cwd(sandbox["work"]):
        exec(compile(text, snippet.source, "exec"), names)
    values = [*names.values()]
    values += [x for v in names.values() if isinstance(v, (list, tuple)) for x in v]
    tracked = [v for v in values if getattr(v, "requires_grad", False)]
    assert not tracked, f"{snippet.source}: the snippet computes with autograd on"


def check_overrides(overrides: list[str], configs: list[list[str]]) -> None:
    """Each override composes and takes effect in the config that has its key (fairseq fills in
    every field of the task, model and criterion dataclasses); one compose per distinct-key round.
    """
    absent = object()
    bases = [compose(config) for config in configs]
    rounds: dict[int, list[list[str]]] = {}
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+")
        index = next(
            (
                i
                for i, b in enumerate(bases)
                if OmegaConf.select(b, key, default=absent) is not absent
            ),
            None,
        )
        assert index is not None, f"documented override {override}: no example config has {key}"
        batches = rounds.setdefault(index, [])
        batch = next((b for b in batches if key not in {o.split("=")[0] for o in b}), None)
        if batch is None:
            batches.append(batch := [])
        batch.append(override)
    for index, batches in rounds.items():
        for batch in batches:
            cfg = compose([*configs[index], *batch])
            for override in batch:
                key, value = override.split("=", 1)
                got = OmegaConf.select(cfg, key)
                got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
                assert got == yaml.safe_load(value) or str(got) == value, (override, got)


def config_args(path: Path) -> list[str]:
    return [
        "--user-dir",
        "vesper_fairseq",
        "--config-dir",
        str(path.parent),
        "--config-name",
        path.stem,
    ]


def test_documented_overrides_compose_and_take_effect():
    readme = [
        config_args(REPO / "examples" / c)
        for c in ("pretraining/vesper4.yaml", "finetuning/iemocap.yaml")
    ]
    for document in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        check_overrides(inline_overrides(document), readme)
    for path in EXAMPLES:
        check_overrides(yaml_header(path)[1], [config_args(path)])


def test_an_unmapped_input_fails_naming_the_table(sandbox):
    (command,) = readme_commands_from(
        "python manifests/new_corpus.py /data/NewCorpus --dest manifests/new"
    )
    with pytest.raises(UnmappedPlaceholder, match=r"'/data/NewCorpus'.*PLACEHOLDERS"):
        substitute(command, sandbox["standins"], {})


def readme_commands_from(text: str):
    from readme_commands import _expand

    return _expand("example", text)
