"""Every option has help: each field of the plugin's registered fairseq configs (nested ones
included) and each option of the corpus command lines, whose defaults are their configs'."""

import argparse
import dataclasses

import pytest
from fairseq.criterions import CRITERION_DATACLASS_REGISTRY
from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.tasks import TASK_DATACLASS_REGISTRY

import vesper_fairseq  # noqa: F401  (registers the plugin)
from vesper_fairseq.corpora import (
    audio_folder,
    cli,
    cremad,
    emobox,
    iemocap,
    lssed,
    meld,
    synthetic,
    user_labelled,
)


def plugin_configs():
    registries = (TASK_DATACLASS_REGISTRY, MODEL_DATACLASS_REGISTRY, CRITERION_DATACLASS_REGISTRY)
    found = [c for r in registries for c in r.values() if c.__module__.startswith("vesper_fairseq")]
    seen = []
    while found:
        config = found.pop()
        if config in seen:
            continue
        seen.append(config)
        for f in dataclasses.fields(config):
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(
                f.default_factory
            ):
                found.append(f.default_factory)
    return seen


def test_every_registered_config_field_has_help():
    configs = plugin_configs()
    names = {c.__name__ for c in configs}
    assert {"VesperConfig", "MaskingConfig", "VesperPretrainingConfig"} <= names
    missing = [
        f"{c.__name__}.{f.name}"
        for c in configs
        for f in dataclasses.fields(c)
        if not f.name.startswith("_") and not f.metadata.get("help")
    ]
    assert not missing, f"config fields without help: {missing}"


COMMANDS = {
    cli.audio_folder_main: (audio_folder.AudioFolderConfig, ["R", "--dest", "D"]),
    cli.iemocap_main: (iemocap.IemocapConfig, ["R", "--dest", "D"]),
    cli.meld_main: (meld.MeldConfig, ["R", "--dest", "D"]),
    cli.cremad_main: (cremad.CremadConfig, ["R", "--dest", "D"]),
    cli.lssed_main: (lssed.LssedConfig, ["R", "--dest", "D"]),
    cli.synthetic_main: (synthetic.SyntheticConfig, ["R", "--dest", "D"]),
    cli.emobox_main: (emobox.EmoboxConfig, ["E", "iemocap", "--audio-root", "A", "--dest", "D"]),
    cli.labelled_main: (user_labelled.LabelledConfig, ["R", "--dest", "D"]),
}


class Parsed(Exception):
    pass


@pytest.mark.parametrize("main", COMMANDS, ids=lambda main: main.__name__)
def test_corpus_options_have_help_and_their_configs_defaults(main, monkeypatch):
    config, argv = COMMANDS[main]
    parsers = []
    parse_args = argparse.ArgumentParser.parse_args

    def spy(self, args=None, namespace=None):
        parsers.append(self)
        ns = parse_args(self, args, namespace)
        raise Parsed(ns)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    with pytest.raises(Parsed) as parsed:
        main(argv)
    actions = [a for a in parsers[0]._actions if a.dest != "help"]
    assert all(a.help and a.help.strip() for a in actions), [a.dest for a in actions]
    options = {a.dest for a in actions}
    fixed = set(cli.CREMAD_FIXED) if config is cremad.CremadConfig else set()
    for f in dataclasses.fields(config):
        if f.name in fixed:
            assert f.name not in options
            continue
        assert f.name in options, f"{config.__name__}.{f.name} is no option of {main.__name__}"
    assert cli.config_from_args(config, parsed.value.args[0]) == config()
