"""The flywheel: retraining on drift or new labels, fairness-gated promotion, canary rollouts."""
