"""insitu: distill a big model into a tiny quantized student and deliver it as bit-exact FPGA firmware.

A user's own model: `insitu.from_qonnx(path)`, `insitu.from_keras(path)` and
`insitu.from_brevitas(module, input_shape)` return a QuantModel; `insitu.compile(model, out=..., inputs=...,
board=...)` takes it to verified firmware (see insitu.api).
"""

import os

__version__ = "0.1.0"

# Keras 3 (HGQ2 models) runs on torch here: TensorFlow is not installed in insitu's environment, and Keras would
# otherwise pick it as its backend the first time anything imports it.
os.environ.setdefault("KERAS_BACKEND", "torch")

_API = ("from_qonnx", "from_keras", "from_brevitas", "compile")


def __getattr__(name: str):  # the API loads torch and qonnx: only when asked for
    if name in _API:
        from insitu import api

        return getattr(api, name)
    raise AttributeError(f"module 'insitu' has no attribute {name!r}")
