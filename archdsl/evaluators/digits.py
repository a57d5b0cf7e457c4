"""The default evaluator: the training evaluator on scikit-learn's digits data.

1,797 grey 8x8 images of the digits 0-9 ship inside scikit-learn (nothing is downloaded). A
fixed stratified split keeps 360 of them for validation; the objective is validation accuracy.
The training recipe is the space's `train` section (its decisions are searched too):
optimizer (adam, adamw, sgd, rmsprop), lr, batch, epochs, weight_decay, momentum, schedule
(constant, cosine, step), label_smoothing and seed. Everything else is train.py's.
"""

from __future__ import annotations

from .data import VALID_FRACTION
from .recipe import recipe
from .train import TrainEvaluator

__all__ = ["DigitsEvaluator", "recipe", "VALID_FRACTION"]


class DigitsEvaluator(TrainEvaluator):
    """Trains on 1,437 digits, scores validation accuracy on 360 (see the module doc)."""

    name = "digits"

    def __init__(self, device: str = "auto", threads: int | None = None):
        super().__init__("digits", device, threads)
