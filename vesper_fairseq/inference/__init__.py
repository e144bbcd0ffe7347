"""Using a fine-tuned classifier on new audio (`EmotionClassifier`, in classifier.py) and its
file I/O."""
