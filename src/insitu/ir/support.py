"""Which layer kind (and which variant of it) each backend supports: the registry behind docs/support.md.

`SUPPORT[feature][backend]` is True when the backend computes the feature bit-exactly and a test in CI proves it,
else the reason and what to do instead. Backends call `require(model, backend)` before they start, so a model
using something they lack fails there with an error naming the layer, the backend and the alternative. The
table in docs/support.md is generated from this registry (`markdown()`), and a test keeps the two equal.
"""

from __future__ import annotations

from insitu.errors import ExportError, InsituError
from insitu.ir.layers import AvgPool1D, AvgPool2D, Conv1D, Conv2D, Layer, MaxPool1D, MaxPool2D, Requant
from insitu.ir.model import QuantModel

#: backend name -> what it is
BACKENDS: dict[str, str] = {
    "reference": "numpy integer reference (the definition of correct)",
    "brevitas": "export from Brevitas modules to the IR",
    "hls_stream": "hls4ml project + C simulation, io_stream",
    "hls_parallel": "hls4ml project + C simulation, io_parallel",
    "rtl_unrolled": "unrolled Verilog (a sample per clock)",
    "rtl_streaming": "streaming Verilog (pixels per clock, line buffers)",
}

_LATER = "not implemented yet"
_HLS_POOL = ("hls4ml's streaming pooling requires stride = size (its C simulation asserts, its hardware would "
             "compute other windows); use io_parallel")
_ONLY_2D = "the streaming core streams 2-D images; use the unrolled architecture for sequences"
_NO_BN = ("a batch norm is folded into the layer before it at export; an unfolded one has float scales that no "
          "fixed-point type holds: fold it, or quantize its output with a QuantIdentity")
_NO_GRAPH = "the exporter walks an nn.Sequential; a graph with branches needs the Brevitas graph importer (not yet)"
_STREAM_POOL = "a streaming block pools with stride = size only: use the unrolled architecture or hls io_parallel"
_STREAM_BLOCK = ("a streaming block is convolution, requant and pooling; fold the scale-and-shift into the "
                 "convolution, or use the unrolled architecture")
_HLS_RESHAPE = ("hls4ml reshapes its channels-last tensors, the IR's reshape is channel-first: not mapped (it would "
                "need transposes around it); use Flatten")


def _row(ok: set[str], why: dict[str, str] | None = None, default: str = _LATER) -> dict[str, bool | str]:
    why = why or {}
    ok = ok | {"rtl_unrolled"}  # every kind lowers to flat vector ops (ir.lower), each one pipeline stage
    return {b: True if b in ok else why.get(b, default) for b in BACKENDS}


_CORE = {"reference", "brevitas", "hls_stream", "hls_parallel"}
SUPPORT: dict[str, dict[str, bool | str]] = {
    "input": _row(set(BACKENDS)),
    "conv2d (valid, stride 1, square kernel)": _row(_CORE | {"rtl_streaming"}),
    "conv2d zero padding": _row(_CORE | {"rtl_streaming"}),
    "conv2d stride > 1": _row(_CORE | {"rtl_streaming"}),
    "conv2d depthwise (groups = channels)": _row({"reference", "brevitas", "hls_stream", "hls_parallel",
                                                  "rtl_streaming"}),
    "conv2d non-square kernel": _row(_CORE | {"rtl_streaming"}),
    "conv1d": _row(_CORE, {"rtl_streaming": _ONLY_2D}),
    "dense": _row(set(BACKENDS)),
    "requant relu / clipped relu": _row(set(BACKENDS)),
    "requant identity (no activation)": _row(_CORE | {"rtl_streaming"}),
    "scaleshift (unfolded batch norm)": _row({"reference", "hls_stream", "hls_parallel"},
                                             {"brevitas": _NO_BN, "rtl_streaming": _STREAM_BLOCK}),
    "maxpool2d (stride = size)": _row(_CORE | {"rtl_streaming"}),
    "maxpool overlapping (stride < size)": _row({"reference", "brevitas", "hls_parallel"},
                                                {"hls_stream": _HLS_POOL, "rtl_streaming": _STREAM_POOL}),
    "maxpool1d": _row(_CORE, {"rtl_streaming": _ONLY_2D}),
    "avgpool2d": _row(_CORE | {"rtl_streaming"}),
    "avgpool overlapping (stride < size)": _row({"reference", "brevitas", "hls_parallel"},
                                                {"hls_stream": _HLS_POOL, "rtl_streaming": _STREAM_POOL}),
    "avgpool1d": _row(_CORE, {"rtl_streaming": _ONLY_2D}),
    "globalavgpool": _row(_CORE | {"rtl_streaming"}),
    "globalmaxpool": _row(_CORE | {"rtl_streaming"}),
    "add (residual)": _row({"reference", "hls_stream", "hls_parallel", "rtl_streaming"}, {"brevitas": _NO_GRAPH}),
    "concatenate (channels)": _row({"reference", "hls_stream", "hls_parallel", "rtl_streaming"},
                                   {"brevitas": _NO_GRAPH}),
    "flatten": _row(set(BACKENDS)),
    "reshape": _row({"reference"}, {"brevitas": "the exporter reads Flatten only (a view or Unflatten is not "
                                                "exported): flatten, or use the reference",
                                    "hls_stream": _HLS_RESHAPE, "hls_parallel": _HLS_RESHAPE,
                                    "rtl_streaming": "the streaming core streams one image shape; use the unrolled "
                                                     "architecture"}),
}


def features(layer: Layer) -> list[str]:
    """The rows of SUPPORT that one layer uses."""
    if isinstance(layer, Conv2D):
        kh, kw = layer.weight.shape[2:]
        out = ["conv2d (valid, stride 1, square kernel)"]
        if any(layer.padding):
            out.append("conv2d zero padding")
        if tuple(layer.stride) != (1, 1):
            out.append("conv2d stride > 1")
        if layer.groups != 1:
            out.append("conv2d depthwise (groups = channels)")
        if kh != kw:
            out.append("conv2d non-square kernel")
        return out
    if isinstance(layer, Conv1D):
        return ["conv1d"]
    if isinstance(layer, Requant):
        return ["requant relu / clipped relu" if layer.relu else "requant identity (no activation)"]
    if isinstance(layer, (MaxPool2D, MaxPool1D, AvgPool2D, AvgPool1D)):
        kind = "maxpool" if isinstance(layer, (MaxPool2D, MaxPool1D)) else "avgpool"
        base = {"maxpool2d": "maxpool2d (stride = size)"}.get(layer.kind, layer.kind)
        return [base] if layer.stride in (0, layer.size) else [base, f"{kind} overlapping (stride < size)"]
    names = {"scaleshift": "scaleshift (unfolded batch norm)", "add": "add (residual)",
             "concatenate": "concatenate (channels)"}
    return [names.get(layer.kind, layer.kind)]


def require(model: QuantModel, backend: str, error: type[InsituError] = ExportError) -> None:
    """Raise `error` naming the first layer whose kind or variant `backend` does not support."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}")
    for layer in model.layers:
        for feat in features(layer):
            verdict = SUPPORT[feat][backend]
            if verdict is not True:
                others = [b for b, v in SUPPORT[feat].items() if v is True and b != "reference"]
                also = f"; supported by: {', '.join(others)}" if others else ""
                raise error(f"layer {layer.name!r} ({feat}) is not supported by the {backend} backend "
                            f"({BACKENDS[backend]}): {verdict}", f"change the model, or use another backend{also}")


def markdown() -> str:
    """The support table of docs/support.md."""
    head = ["# Layer support by backend", "",
            "Generated from `insitu.ir.support.SUPPORT` (`python -m insitu.ir.support > docs/support.md`); a test "
            "keeps this file equal to the registry. **yes** means the backend computes the layer bit-exactly and a "
            "test in CI proves it; otherwise the reason. A backend refuses an unsupported layer by name before it "
            "starts.", "",
            "| layer | " + " | ".join(BACKENDS) + " |", "|---|" + "---|" * len(BACKENDS)]
    rows = [f"| {feat} | " + " | ".join("yes" if v is True else v for v in verdicts.values()) + " |"
            for feat, verdicts in SUPPORT.items()]
    legend = ["", "Backends:", "", *[f"- `{b}`: {d}" for b, d in BACKENDS.items()], ""]
    return "\n".join(head + rows + legend)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(markdown())
