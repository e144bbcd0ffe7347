"""Every config key the README and docs name in prose (`model.unfreeze_top_k`, `task.pad`, ...)
exists in a config the plugin or fairseq registers: a documented switch never stops with
"Could not override". Commands with values are run by test_readme.py; this covers the names."""

import dataclasses
import re
import typing
from pathlib import Path

import pytest
from fairseq.criterions import CRITERION_DATACLASS_REGISTRY
from fairseq.dataclass.configs import FairseqConfig
from fairseq.models import MODEL_DATACLASS_REGISTRY
from fairseq.optim import OPTIMIZER_DATACLASS_REGISTRY
from fairseq.optim.lr_scheduler import LR_SCHEDULER_DATACLASS_REGISTRY
from fairseq.tasks import TASK_DATACLASS_REGISTRY

import vesper_fairseq  # noqa: F401  (registers the plugin's components)

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GROUPS = [f.name for f in dataclasses.fields(FairseqConfig) if f.name != "_name"]
# `group.key`, `+group.key=...`; not a wildcard such as `task.trust_*`
KEY = re.compile(rf"`\+*((?:{'|'.join(GROUPS)})\.[A-Za-z0-9_.]*[A-Za-z0-9_])(?![A-Za-z0-9_.*])")
# dotted names in backticks that are not config keys: a file name, a Python attribute path
NOT_KEYS = {"model.safetensors", "model.encoder.layers"}
PLUGIN_REGISTRIES = {
    "model": MODEL_DATACLASS_REGISTRY,
    "task": TASK_DATACLASS_REGISTRY,
    "criterion": CRITERION_DATACLASS_REGISTRY,
}
# groups whose components fairseq itself provides too: any registered one
SHARED_REGISTRIES = {
    "optimizer": OPTIMIZER_DATACLASS_REGISTRY,
    "lr_scheduler": LR_SCHEDULER_DATACLASS_REGISTRY,
}


def documented_keys() -> list[tuple[str, str]]:
    found = set()
    for path in DOCUMENTS:
        for key in KEY.findall(path.read_text()):
            if key not in NOT_KEYS:
                found.add((path.name, key))
    return sorted(found)


def group_configs(group: str) -> list[type]:
    """The dataclasses a `group.*` key may belong to: the plugin's registered components for
    model / task / criterion, any registered optimizer / LR scheduler, fairseq's top-level
    config class otherwise."""
    if group in PLUGIN_REGISTRIES:
        return [
            cls
            for cls in PLUGIN_REGISTRIES[group].values()
            if cls.__module__.startswith("vesper_fairseq.")
        ]
    if group in SHARED_REGISTRIES:
        return list(SHARED_REGISTRIES[group].values())
    field = next(f for f in dataclasses.fields(FairseqConfig) if f.name == group)
    return [field.type if isinstance(field.type, type) else type(field.default_factory())]


def resolves(cls: type, path: list[str]) -> bool:
    """Whether the dotted field path exists in dataclass `cls` (nested dataclasses followed)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if path[0] not in fields:
        return False
    if len(path) == 1:
        return True
    hints = typing.get_type_hints(cls)
    nested = hints.get(path[0])
    return dataclasses.is_dataclass(nested) and resolves(nested, path[1:])


def test_the_documents_name_config_keys():
    keys = {key for _, key in documented_keys()}
    assert {"model.unfreeze_top_k", "model.masking.strategy", "task.trust_teacher"} <= keys


@pytest.mark.parametrize("document,key", documented_keys())
def test_documented_key_exists(document, key):
    group, *path = key.split(".")
    candidates = group_configs(group)
    assert any(resolves(cls, path) for cls in candidates), (
        f"{document} names `{key}`, which no {group} config has "
        f"(looked in {', '.join(c.__name__ for c in candidates)})"
    )
