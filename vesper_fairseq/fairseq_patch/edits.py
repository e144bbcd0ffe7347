"""The edits fairseq 0.12.2 needs on Python >= 3.11, torch >= 2.6 and numpy >= 1.24, each an exact
text replacement with its reason (the fairseq-hydra-train front end's: hydra_train_edits.py), and
those of an unpacked sdist's packaging. A data table: fairseq_patch/__init__.py applies them."""

from __future__ import annotations

from dataclasses import dataclass

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


def import_edit(path: str, old: str, new: str) -> Edit:
    return Edit(path, old, new, "import needed by the edit above")


def compat_edits() -> list[Edit]:
    """fairseq's package on today's Python, numpy and torch (order: as applied)."""
    edits = _dataclass_edits() + _bundled_example_edits()
    edits += _numpy_edits() + _torch_load_edits() + _atomic_checkpoint_edits()
    return edits + _cpu_distributed_edits() + _torchaudio_edits()


def _dataclass_edits() -> list[Edit]:
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
        import_edit(
            "fairseq/dataclass/initialize.py",
            "import logging\n",
            "import logging\nfrom dataclasses import MISSING\n",
        ),
    ]
    return edits


def _bundled_example_edits() -> list[Edit]:
    """The examples shipped inside the wheel (they matter only when imported, e.g. through
    --user-dir)."""
    edits = _default_factories(
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
        import_edit(
            f"{unsup}/models/wav2vec_u.py",
            "from dataclasses import dataclass\n",
            "from dataclasses import dataclass, field\n",
        )
    )
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
