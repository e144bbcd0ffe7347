from . import (
    emotion_classification,  # noqa: F401
    vesper_pretraining,  # noqa: F401
)
