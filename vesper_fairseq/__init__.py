"""Vesper: a fairseq plugin for emotion-specific speech encoders distilled from WavLM.

Importing the package registers its tasks, models and criteria with fairseq, and makes
fairseq read checkpoints weights-only (safe_load.py)."""

from . import criterions, models, tasks  # noqa: F401
from .checkpoints import load_encoder
from .inference import EmotionClassifier
from .logging_setup import quiet_fairseq_notices
from .safe_load import guard_fairseq_checkpoints

guard_fairseq_checkpoints()
quiet_fairseq_notices()

__version__ = "0.1.0"
__all__ = ["EmotionClassifier", "load_encoder"]
