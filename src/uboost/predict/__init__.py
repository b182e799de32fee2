"""Accuracy prediction from a finished search's supernet: block-additive tables (MathNAS's,
learned from sub-networks measured with inherited weights), saved as ``RUN/predictor.json``.

``build_predictor(run)`` measures and fits (CPU minutes), ``load_predictor(run)`` reads the saved
table back, ``Predictor.predict_arch(arch)`` predicts any network of the space from its architecture dict (label ->
value, as ``arch.json``), ``Predictor.predict(indices)`` from its entry indices, and ``Predictor.objective`` is the
per-(choice, value) objective the exact projection maximizes.
"""

from uboost.predict.predictor import (
    DEFAULT_SAMPLES, PREDICTOR, Prediction, Predictor, build_predictor, load_or_build, load_predictor,
)
from uboost.predict.table import AdditiveTable, fit_additive

__all__ = [
    "DEFAULT_SAMPLES", "PREDICTOR", "AdditiveTable", "Prediction", "Predictor", "build_predictor", "fit_additive",
    "load_or_build", "load_predictor",
]
