"""Using a fine-tuned classifier on new audio (`EmotionClassifier`) and its file I/O."""

from .checkpoint import ClassifierInfo, load_classifier
from .classifier import AudioInputError, EmotionClassifier, Prediction, Segment

__all__ = [
    "AudioInputError",
    "ClassifierInfo",
    "EmotionClassifier",
    "Prediction",
    "Segment",
    "load_classifier",
]
