"""Evaluation of emotion predictions: scores (WA, UA, WF1, macro-F1 from a confusion matrix),
text reports and confusion figures."""
