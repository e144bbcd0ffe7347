from . import vesper_pretraining  # noqa: F401
from . import emotion_classification  # noqa: F401
