"""HGQ2 test models (Keras 3 on the torch backend) with per-tensor activation quantizers, seeded weights."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq.config import QuantizerConfigScope  # noqa: E402
from hgq.layers import QAdd, QAveragePooling2D, QConv2D, QDense, QMaxPool2D  # noqa: E402


def _scope():
    """Per-tensor activation quantizers (the IR's), heterogeneous weights (HGQ2's default)."""
    return QuantizerConfigScope(place="datalane", heterogeneous_axis=(), overflow_mode="SAT")


def mlp(seed: int = 0) -> keras.Model:
    with _scope():
        x = keras.Input((10,))
        h = QDense(12, activation="relu")(x)
        h = QDense(8, activation="relu")(h)
        y = QDense(3)(h)
    return _seeded(keras.Model(x, y), seed)


def cnn(seed: int = 0, residual: bool = False) -> keras.Model:
    with _scope():
        x = keras.Input((8, 8, 1))
        h = QConv2D(4, 3, padding="same", activation="relu")(x)
        h = QMaxPool2D(2)(h)
        if residual:  # each reader quantizes its own input: a fork the streaming core does not build
            h = QAdd()([h, QConv2D(4, 3, padding="same", activation="relu")(h)])
        h = QConv2D(6, 3, padding="valid", activation="relu")(h)
        h = QAveragePooling2D(2)(h)
        y = QDense(3)(keras.layers.Flatten()(h))
    return _seeded(keras.Model(x, y), seed)


def _seeded(m: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    for layer in m.layers:
        for w in layer.trainable_weights:
            if w.name in ("kernel", "bias"):
                w.assign(rng.normal(0, 0.5, tuple(w.shape)).astype("float32"))
    return m
