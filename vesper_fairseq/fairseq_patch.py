#!/usr/bin/env python3
"""Idempotent source patch that makes fairseq 0.12.2 work on Python >= 3.11, torch >= 2.6
and numpy >= 1.24 (see README, "Why fairseq is built from a patched sdist"), and the check that
`import vesper_fairseq` makes of the fairseq it finds. Standard library only: the installer
runs it (through scripts/patch_fairseq.py) before fairseq is installed.

    python scripts/patch_fairseq.py ROOT

ROOT holds the ``fairseq/`` package: an unpacked sdist (patch, then build a wheel: what
``make install`` does) or a site-packages folder. Every edit is an exact text replacement with
its reason; an anchor that is neither found nor already patched fails the run, so another
fairseq version is never patched blindly.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_VERSION = "0.12.2"
LOCAL_VERSION = "0.12.2+py311"
DATACLASS_REASON = "py3.11: a dataclass instance default is unhashable -> default_factory"


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str
    reason: str
    required: bool = True  # False: only quiets output; the plugin works without it


@dataclass
class PatchReport:
    version: str
    applied: int = 0
    already: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing


def _default_factories(path: str, fields: list[tuple[str, str]]) -> list[Edit]:
    return [
        Edit(
            path,
            f"    {name}: {typ} = {typ}()\n",
            f"    {name}: {typ} = field(default_factory={typ})\n",
            DATACLASS_REASON,
        )
        for name, typ in fields
    ]


def _import_edit(path: str, old: str, new: str) -> Edit:
    return Edit(path, old, new, "import needed by the edit above")


def source_edits() -> list[Edit]:
    edits = _default_factories(
        "fairseq/dataclass/configs.py",
        [
            ("common", "CommonConfig"),
            ("common_eval", "CommonEvalConfig"),
            ("distributed_training", "DistributedTrainingConfig"),
            ("dataset", "DatasetConfig"),
            ("optimization", "OptimizationConfig"),
            ("checkpoint", "CheckpointConfig"),
            ("bmuf", "FairseqBMUFConfig"),
            ("generation", "GenerationConfig"),
            ("eval_lm", "EvalLMConfig"),
            ("interactive", "InteractiveConfig"),
            ("ema", "EMAConfig"),
        ],
    )
    transformer_cfg = "fairseq/models/transformer/transformer_config.py"
    edits += _default_factories(
        transformer_cfg, [("encoder", "EncDecBaseConfig"), ("decoder", "DecoderConfig")]
    )
    edits.append(
        Edit(
            transformer_cfg,
            "quant_noise: QuantNoiseConfig = field(default=QuantNoiseConfig())",
            "quant_noise: QuantNoiseConfig = field(default_factory=QuantNoiseConfig)",
            DATACLASS_REASON,
        )
    )
    # hydra_init() stores each FairseqConfig field's .default in Hydra's ConfigStore; with
    # default_factory that is MISSING, so build the default instead.
    edits += [
        Edit(
            "fairseq/dataclass/initialize.py",
            "        v = FairseqConfig.__dataclass_fields__[k].default\n",
            "        f = FairseqConfig.__dataclass_fields__[k]\n"
            "        v = f.default if f.default_factory is MISSING else f.default_factory()\n",
            "follow-up of default_factory: hydra_init would register MISSING",
        ),
        _import_edit(
            "fairseq/dataclass/initialize.py",
            "import logging\n",
            "import logging\nfrom dataclasses import MISSING\n",
        ),
    ]
    # examples shipped inside the wheel (only matter when imported, e.g. through --user-dir)
    edits += _default_factories(
        "fairseq/examples/data2vec/models/data2vec_text.py", [("transformer", "TransformerConfig")]
    )
    edits += _default_factories(
        "fairseq/examples/speech_recognition/new/infer.py",
        [
            ("decoding", "DecodingConfig"),
            ("common", "CommonConfig"),
            ("common_eval", "CommonEvalConfig"),
            ("checkpoint", "CheckpointConfig"),
            ("distributed_training", "DistributedTrainingConfig"),
            ("dataset", "DatasetConfig"),
        ],
    )
    unsup = "fairseq/examples/wav2vec/unsupervised"
    edits += _default_factories(f"{unsup}/w2vu_generate.py", [("fairseq", "FairseqConfig")])
    edits += _default_factories(
        f"{unsup}/tasks/unpaired_audio_text.py", [("decoding_config", "DecodingConfig")]
    )
    edits += _default_factories(
        f"{unsup}/models/wav2vec_u.py", [("segmentation", "SegmentationConfig")]
    )
    edits.append(
        _import_edit(
            f"{unsup}/models/wav2vec_u.py",
            "from dataclasses import dataclass\n",
            "from dataclasses import dataclass, field\n",
        )
    )
    edits += _numpy_edits() + _torch_load_edits() + _atomic_checkpoint_edits()
    edits += _cpu_distributed_edits() + _torchaudio_edits() + _hydra_train_edits()
    return edits


def _numpy_edits() -> list[Edit]:
    return [
        Edit(
            "fairseq/data/data_utils.py",
            "                    np.int,\n",
            "                    int,\n",
            "numpy>=1.24 removed np.int (compute_mask_indices with no_overlap)",
        ),
        Edit(
            "fairseq/modules/dynamic_crf_layer.py",
            'np.float("inf")',
            'float("inf")',
            "numpy>=1.24 removed np.float",
        ),
    ]


def _torch_load_edits() -> list[Edit]:
    reason = "torch>=2.6 defaults weights_only=True; fairseq's own files pickle Namespaces"
    return [
        Edit(
            "fairseq/checkpoint_utils.py",
            'state = torch.load(f, map_location=torch.device("cpu"))',
            'state = torch.load(f, map_location=torch.device("cpu"), weights_only=False)',
            reason,
        ),
        Edit(
            "fairseq/checkpoint_utils.py",
            '                lambda s, _: torch.serialization.default_restore_location(s, "cpu")\n'
            "            ),\n        )",
            '                lambda s, _: torch.serialization.default_restore_location(s, "cpu")\n'
            "            ),\n            weights_only=False,\n        )",
            reason + " (load_ema_from_checkpoint)",
        ),
        Edit(
            "fairseq/distributed/utils.py",
            'obj = torch.load(buffer, map_location="cpu")',
            'obj = torch.load(buffer, map_location="cpu", weights_only=False)',
            reason + " (broadcast_object between ranks)",
        ),
    ]


def _atomic_checkpoint_edits() -> list[Edit]:
    return [
        Edit(
            "fairseq/checkpoint_utils.py",
            "                assert PathManager.copy(\n"
            "                    checkpoints[0], cp, overwrite=True\n"
            '                ), f"Failed to copy {checkpoints[0]} to {cp}"\n',
            "                assert PathManager.copy(\n"
            '                    checkpoints[0], cp + ".tmp", overwrite=True\n'
            '                ), f"Failed to copy {checkpoints[0]} to {cp}"\n'
            '                PathManager.rename(cp + ".tmp", cp)\n',
            "checkpoint_last.pt / _best.pt were plain copies: a run killed during the copy left "
            "a truncated checkpoint that resuming cannot read; copy to .tmp, then rename",
        ),
    ]


def _cpu_distributed_edits() -> list[Edit]:
    return [
        Edit(
            "fairseq/distributed/utils.py",
            "        all_gather_list._buffer = torch.cuda.ByteTensor(buffer_size)\n"
            "        all_gather_list._cpu_buffer = torch.ByteTensor(max_size).pin_memory()\n",
            "        if torch.cuda.is_available():\n"
            "            all_gather_list._buffer = torch.cuda.ByteTensor(buffer_size)\n"
            "            all_gather_list._cpu_buffer = torch.ByteTensor(max_size).pin_memory()\n"
            "        else:  # CPU-only torch + gloo\n"
            "            all_gather_list._buffer = torch.ByteTensor(buffer_size)\n"
            "            all_gather_list._cpu_buffer = torch.ByteTensor(max_size)\n",
            "CPU-only distributed training (gloo): all_gather_list hard-coded CUDA buffers",
        ),
        Edit(
            "fairseq/models/distributed_fairseq_model.py",
            "            device_ids=[args.device_id],\n            output_device=args.device_id,\n",
            '            device_ids=[args.device_id] if device.type == "cuda" else None,\n'
            '            output_device=args.device_id if device.type == "cuda" else None,\n',
            "CPU-only distributed training: DDP rejects device_ids for CPU modules",
        ),
    ]


def _torchaudio_edits() -> list[Edit]:
    path = "fairseq/data/audio/audio_utils.py"
    lazy_import = (
        "        try:  # only needed when an effect is applied\n"
        "            import torchaudio.sox_effects as ta_sox\n"
        "        except ImportError:\n"
        '            raise ImportError("Please install torchaudio: pip install torchaudio")\n'
    )
    return [
        Edit(
            path,
            "    try:\n        import torchaudio.sox_effects as ta_sox\n    except ImportError:\n"
            '        raise ImportError("Please install torchaudio: pip install torchaudio")\n\n'
            "    effects = []\n",
            "    effects = []\n",
            "torchaudio is optional: convert_waveform imported sox_effects unconditionally",
        ),
        Edit(
            path,
            "    if len(effects) > 0:\n        is_np_input = isinstance(waveform, np.ndarray)\n",
            "    if len(effects) > 0:\n"
            + lazy_import
            + "        is_np_input = isinstance(waveform, np.ndarray)\n",
            "torchaudio is optional: the import moved to where it is used",
        ),
    ]


HYDRA_TRAIN = "fairseq_cli/hydra_train.py"
PREPARE_ARGV = """

def _options_then_overrides(argv):
    \"\"\"Hydra's parser takes no option after the first override: put the options first.\"\"\"
    from hydra._internal.utils import get_args_parser

    actions = {s: a for a in get_args_parser()._actions for s in a.option_strings}
    options, overrides, i = [], [], 0
    while i < len(argv):
        arg, action, i = argv[i], actions.get(argv[i].split("=", 1)[0]), i + 1
        if action is None and not arg.startswith("-"):
            overrides.append(arg)
            continue
        options.append(arg)
        value = arg == "--user-dir" or (action is not None and action.nargs is None)
        optional = action is not None and action.nargs == "?"  # --info [TOPIC]
        if "=" not in arg and i < len(argv) and (value or optional and argv[i] in action.choices):
            options.append(argv[i])
            i += 1
    return options, overrides


def _prepare_argv(argv):
    \"\"\"`--user-dir DIR` as in fairseq-train, anywhere on the command line: imported before Hydra
    composes the config and passed on as common.user_dir=/abs/DIR (a common.user_dir= override is
    imported early too). Plain overrides of the fields of the registry groups (task, model,
    criterion, ...) are applied with ++, so a field the yaml does not list can be set as
    group.key=value; add_defaults still rejects a key the component's dataclass lacks.\"\"\"
    from argparse import Namespace
    from typing import Any

    from fairseq.utils import import_user_module

    options, overrides = _options_then_overrides(argv)
    user_dirs, rest, args = set(), [], iter(options)
    for arg in args:
        if arg == "--user-dir":
            user_dirs.add(next(args, ""))
        elif arg.startswith("--user-dir="):
            user_dirs.add(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    user_dirs |= {o.split("=", 1)[1] for o in overrides if o.startswith("common.user_dir=")}
    user_dirs = {os.path.abspath(d) if os.path.exists(d) else d for d in user_dirs}
    if "" in user_dirs or len(user_dirs) > 1:
        sys.exit(f"fairseq-hydra-train: error: give one plugin folder, not {sorted(user_dirs)}")
    overrides = [o for o in overrides if not o.startswith("common.user_dir=")]
    if user_dirs:
        user_dir = user_dirs.pop()
        import_user_module(Namespace(user_dir=user_dir))
        overrides.append(f"common.user_dir={user_dir}")
    fields = FairseqConfig.__dataclass_fields__
    groups = "|".join(k for k, f in fields.items() if f.type == Any)
    plain = re.compile(rf"^({groups})\\.\\w[\\w.]*=")
    return rest + ["++" + o if plain.match(o) else o for o in overrides]


def cli_main():
    sys.argv[1:] = _prepare_argv(sys.argv[1:])
    try:
"""


QUIET_HYDRA = """def _quiet_hydra_notices():
    # fairseq relies on Hydra 1.0/1.1 behaviour (schema matching, _group_ headers, chdir): its
    # deprecation notices are not the user's concern
    for message in (
        "The version_base parameter is not specified",
        "'.*' is validated against ConfigStore schema",
        "Future Hydra versions will no longer change working directory",
        ".*Usage of deprecated keyword in package header",
    ):
        warnings.filterwarnings("ignore", message=r"\\s*" + message)


_quiet_hydra_notices()


"""
HYDRA_MAIN = (
    '@hydra.main(config_path=os.path.join("..", "fairseq", "config"), config_name="config")'
)


def _hydra_train_edits() -> list[Edit]:
    return [
        Edit(
            HYDRA_TRAIN,
            HYDRA_MAIN,
            QUIET_HYDRA + HYDRA_MAIN,
            "Hydra's deprecation notices about fairseq's own use of Hydra 1.0/1.1 behaviour "
            "(version_base, schema matching, _group_ headers, chdir) printed on every run",
            required=False,
        ),
        Edit(
            HYDRA_TRAIN,
            "\n\ndef cli_main():\n    try:\n",
            PREPARE_ARGV,
            "fairseq-hydra-train --user-dir DIR like fairseq-train; options and overrides in any "
            "order; any field of a registered component's dataclass overridable as "
            "group.key=value (the yaml need not list it)",
        ),
        Edit(
            HYDRA_TRAIN,
            "    add_defaults(cfg)\n",
            "    try:\n        add_defaults(cfg)\n"
            "    except ConfigKeyError as err:  # model.key=value naming no field of the model\n"
            '        sys.exit(f"fairseq-hydra-train: error: {err}")\n',
            "an override of a field the component lacks: one line naming it, not a traceback",
            required=False,
        ),
        Edit(
            HYDRA_TRAIN,
            "from omegaconf import OmegaConf, open_dict\n",
            "from omegaconf import OmegaConf, open_dict\n"
            "from omegaconf.errors import ConfigKeyError\n",
            "import needed by the edit above",
            required=False,
        ),
        _import_edit(
            HYDRA_TRAIN,
            "import logging\nimport os\n",
            "import logging\nimport os\nimport re\nimport sys\nimport warnings\n",
        ),
        Edit(
            "fairseq/tasks/text_to_speech.py",
            '    logger.info("Please install tensorboardX: pip install tensorboardX")\n',
            '    logger.debug("Please install tensorboardX: pip install tensorboardX")\n',
            "an optional dependency of the TTS task was announced on every import of "
            "fairseq.tasks (every command, even --help)",
            required=False,
        ),
    ]


def packaging_edits() -> list[Edit]:
    """Edits of an unpacked sdist only: honest metadata for the wheel we build."""
    return [
        Edit(
            "fairseq/version.txt",
            SUPPORTED_VERSION,
            LOCAL_VERSION,
            "local version label: never confused with the unpatched PyPI build",
        ),
        Edit(
            "setup.py",
            '"hydra-core>=1.0.7,<1.1",',
            '"hydra-core>=1.3.2,<1.4",',
            "hydra-core 1.0.x is broken on Python 3.11",
        ),
        Edit(
            "setup.py",
            '"omegaconf<2.1",',
            '"omegaconf>=2.3,<2.4",',
            "pip>=24.1 rejects omegaconf 2.0.x metadata",
        ),
        Edit(
            "setup.py",
            '            "torchaudio>=0.8.0",\n',
            "",
            "no CPU torchaudio wheel matches torch 2.13; fairseq imports it lazily",
        ),
        Edit(
            "setup.py",
            '            "torch",\n',
            '            "torch>=1.13",\n',
            "torch.load(weights_only=...) needs torch>=1.13",
        ),
        Edit(
            "setup.py",
            "    from torch.utils import cpp_extension\n",
            "    from torch.utils import cpp_extension\n\n"
            '    if not os.path.exists("fairseq/clib/libbase/balanced_assignment.cpp"):\n'
            '        raise ImportError("torch C++ extension sources are not in the sdist")\n',
            "the sdist lacks the extension sources: skip them even without build isolation",
        ),
    ]


def fairseq_version(root: Path) -> str:
    version_txt, version_py = root / "fairseq" / "version.txt", root / "fairseq" / "version.py"
    if version_txt.exists():
        return version_txt.read_text().strip()
    if version_py.exists():
        match = re.search(r'__version__ = "([^"]+)"', version_py.read_text())
        if match:
            return match.group(1)
    raise FileNotFoundError(f"no fairseq package (version.txt or version.py) under {root}")


def _apply(text: str, edit: Edit) -> tuple[str, str]:
    """Returns (new text, outcome) with outcome one of applied / already / missing."""
    already = (edit.new and edit.new in text) or (not edit.new and edit.old not in text)
    if edit.old in text and not (edit.new and edit.new in text and edit.old in edit.new):
        return text.replace(edit.old, edit.new, 1), "applied"
    return text, "already" if already else "missing"


def patch(root: str | Path) -> PatchReport:
    root = Path(root)
    version = fairseq_version(root)
    if not version.startswith(SUPPORTED_VERSION):
        raise ValueError(f"refusing to patch fairseq {version} under {root}: written for 0.12.2")
    edits = source_edits() + (packaging_edits() if (root / "setup.py").exists() else [])
    report, texts = PatchReport(version), {}
    for edit in edits:
        path = root / edit.path
        if not path.exists():
            report.missing.append(f"{edit.path} (file absent)")
            continue
        texts[edit.path], outcome = _apply(texts.get(edit.path) or path.read_text(), edit)
        if outcome == "missing":
            report.missing.append(f"{edit.path}: {edit.old.strip()[:60]!r}")
        else:
            setattr(report, outcome, getattr(report, outcome) + 1)
    if report.ok:  # never leave a half-patched tree
        for rel, text in texts.items():
            if (root / rel).read_text() != text:
                (root / rel).write_text(text)
    return report


def missing_patches(root: str | Path) -> list[Edit]:
    """The required edits (fairseq's own code, not its bundled examples) absent from the fairseq
    package under `root`, a site-packages folder or an unpacked sdist."""
    missing = []
    for edit in source_edits():
        if not edit.required or edit.path.startswith("fairseq/examples/"):
            continue
        path = Path(root) / edit.path
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if (edit.new not in text) if edit.new else (edit.old in text):
            missing.append(edit)
    return missing


def check_installed_fairseq() -> None:
    """Raises ImportError naming each required patch the importable fairseq lacks (it is located
    without being imported: unpatched, `import fairseq` fails on Python 3.11 before saying why)."""
    spec = importlib.util.find_spec("fairseq")
    if spec is None or not spec.submodule_search_locations:
        return  # no fairseq: the import that needs it says so
    root = Path(list(spec.submodule_search_locations)[0]).parent
    missing = missing_patches(root)
    if missing:
        reasons = "".join(f"\n  - {e.path}: {e.reason}" for e in missing)
        raise ImportError(
            f"the fairseq in {root} lacks {len(missing)} of vesper-fairseq's patches:{reasons}\n"
            f"apply them with `python scripts/patch_fairseq.py {root}` (from a vesper-fairseq "
            "checkout), or install the patched wheel with `make install`"
        )


def main(argv: list[str]) -> int:
    root = argv[1] if len(argv) > 1 else "."
    try:
        report = patch(root)
    except (FileNotFoundError, ValueError) as err:
        print(f"patch_fairseq: {err}", file=sys.stderr)
        return 2
    print(
        f"fairseq {report.version} patch: {report.applied} applied, "
        f"{report.already} already present, {len(report.missing)} missing"
    )
    for item in report.missing:
        print(f"  MISSING {item}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
