"""Vesper: a fairseq plugin for emotion-specific speech encoders distilled from WavLM.

Importing the package registers its tasks, models and criteria with fairseq, and makes
fairseq read checkpoints weights-only (safe_load.py)."""

from .fairseq_patch import check_installed_fairseq

check_installed_fairseq()  # before anything imports fairseq

from . import criterions, lr_schedulers, models, tasks  # noqa: E402, F401
from .formats import load_encoder  # noqa: E402
from .inference.classifier import EmotionClassifier  # noqa: E402
from .logging_setup import quiet_fairseq_notices  # noqa: E402
from .safe_load import guard_fairseq_checkpoints  # noqa: E402

guard_fairseq_checkpoints()
quiet_fairseq_notices()

__version__ = "0.1.0"
__all__ = ["EmotionClassifier", "load_encoder"]
