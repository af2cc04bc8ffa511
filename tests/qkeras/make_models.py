"""Builds QKeras test models with seeded random weights and saves them (run in the QKeras environment):

    python tests/qkeras/make_models.py OUT_DIR      # writes OUT_DIR/mlp.h5, cnn.h5 and bn.h5 (not importable)
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D  # noqa: E402


def mlp() -> keras.Model:
    x = keras.Input((12,))
    h = QActivation("quantized_bits(8, 2)")(x)  # the input quantizer: signed, 5 fractional bits
    h = QDense(16, kernel_quantizer="quantized_bits(6, 0, alpha=1)", bias_quantizer="quantized_bits(10, 3, alpha=1)",
               activation="quantized_relu(6, 2)")(h)
    h = QDense(8, kernel_quantizer="quantized_bits(6, 0, alpha='auto_po2')", bias_quantizer="quantized_bits(10, 3)")(h)
    h = QActivation("quantized_relu(6, 2)")(h)
    y = QDense(3, kernel_quantizer="quantized_bits(6, 0)", bias_quantizer="quantized_bits(10, 3)")(h)
    return keras.Model(x, y)


def cnn() -> keras.Model:
    x = keras.Input((12, 12, 1))
    h = QActivation("quantized_relu(8, 0)")(x)  # pixels 0..1 at 8 fractional bits
    h = QConv2D(6, 3, padding="same", kernel_quantizer="quantized_bits(6, 0)", bias_quantizer="quantized_bits(12, 4)",
                activation="quantized_relu(6, 2)")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    d = QDepthwiseConv2D(3, padding="same", depthwise_quantizer="quantized_bits(6, 0)",
                         bias_quantizer="quantized_bits(12, 4)")(h)
    d = QActivation("quantized_relu(6, 2)")(d)
    d = QConv2D(6, 1, kernel_quantizer="quantized_bits(6, 0)", bias_quantizer="quantized_bits(12, 4)",
                activation="quantized_relu(6, 2)")(d)
    h = keras.layers.Add()([h, d])
    h = QActivation("quantized_relu(6, 2)")(h)
    h = QConv2D(8, 3, strides=2, padding="valid", kernel_quantizer="quantized_bits(6, 0)",
                bias_quantizer="quantized_bits(12, 4)", activation="quantized_relu(6, 2)")(h)
    h = keras.layers.Flatten()(h)  # channels-last order: the IR permutes the Dense's columns
    y = QDense(3, kernel_quantizer="quantized_bits(6, 0)", bias_quantizer="quantized_bits(12, 4)")(h)
    return keras.Model(x, y)


def with_batchnorm() -> keras.Model:
    """Not importable: an unfolded batch normalization."""
    x = keras.Input((6,))
    h = QActivation("quantized_bits(8, 2)")(x)
    h = QDense(4, kernel_quantizer="quantized_bits(6, 0)", bias_quantizer="quantized_bits(10, 3)")(h)
    h = keras.layers.BatchNormalization()(h)
    return keras.Model(x, QActivation("quantized_bits(8, 2)")(h))


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    for name, make in (("mlp", mlp), ("cnn", cnn)):
        m = make()
        for layer in m.layers:  # spread the weights so that the quantizers use their range
            ws = layer.get_weights()
            if ws:
                layer.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in ws])
        m.save(os.path.join(out, f"{name}.h5"))
    with_batchnorm().save(os.path.join(out, "bn.h5"))


if __name__ == "__main__":
    main(sys.argv[1])
