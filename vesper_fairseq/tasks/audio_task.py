"""What both audio tasks share: config fields and the fairseq task interface they answer the
same way (not a registered component)."""

import os
from dataclasses import dataclass, field

from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask
from omegaconf import II

from ..modules.wavlm_config import SAMPLE_RATE
from ..training import exit_if_complete


@dataclass
class AudioTaskConfig(FairseqDataclass):
    sample_rate: int = field(
        default=SAMPLE_RATE,
        metadata={
            "help": "the manifests' audio rate: 16000, WavLM's (the manifest scripts convert)"
        },
    )
    num_batch_buckets: int = field(
        default=0, metadata={"help": "pad batches to this many length buckets (0 = off)"}
    )
    trust_restore_file: bool = field(
        default=False,
        metadata={
            "help": "unpickle fairseq checkpoints (the one resumed from) that a weights-only "
            "load refuses: only files you trust"
        },
    )
    seed: int = field(
        default=II("common.seed"), metadata={"help": "common.seed (random training crops)"}
    )
    max_update: int = field(
        default=II("optimization.max_update"),
        metadata={"help": "optimization.max_update (a finished run started again stops)"},
    )


class AudioTask(FairseqTask):
    """Waveform in, no token dictionaries, no length limit."""

    def __init__(self, cfg):
        if cfg.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"task.sample_rate={cfg.sample_rate}: WavLM encoders take {SAMPLE_RATE} Hz audio; "
                "build the manifests with the manifest scripts, which convert to 16 kHz mono"
            )
        super().__init__(cfg)

    def begin_epoch(self, epoch, model):
        exit_if_complete(self.cfg, model)  # a finished run started again stops here

    def manifest(self, split: str) -> str:
        path = os.path.join(self.cfg.data, f"{split}.tsv")
        if not os.path.exists(path):
            raise FileNotFoundError(f"manifest {path} not found")
        return path

    def max_positions(self):
        return None

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return None
