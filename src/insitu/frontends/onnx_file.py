"""Reading a QONNX file safely: every way it can be broken gets an error that names it and the fix.

onnx's own loader parses protobuf (no code execution); external weights (`<name>.onnx.data`, as Brevitas' dynamo
exporter writes) are read from beside the model. The model is then cleaned with qonnx (constant folding,
shape inference, unique names) exactly as qonnx's executor sees it.
"""

from __future__ import annotations

from pathlib import Path

from insitu.errors import ModelImportError

_FIX_EXPORT = ("export the model again (Brevitas: brevitas.export.export_qonnx(model, input_t=..., "
               "export_path='model.onnx'); HGQ2 / qonnx converters write QONNX too)")


def _parse(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ModelImportError(f"model file {path} does not exist", "pass the path of a .onnx file")
    head = path.read_bytes()[:64]
    if not head:
        raise ModelImportError(f"{path} is empty", _FIX_EXPORT)
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as exc:
        raise ModelImportError(f"{path} is not an ONNX model or is truncated ({type(exc).__name__}: {exc})",
                               _FIX_EXPORT) from None
    if not proto.graph.node:
        raise ModelImportError(f"{path} parsed, but holds no graph (not an ONNX model, or cut short)", _FIX_EXPORT)
    return proto


def load_proto_header(path: Path) -> list[Path]:
    """The external-data files the model names (checked to exist), without reading them."""
    proto = _parse(Path(path))
    missing = _missing_external(proto, Path(path).parent)
    if missing:
        raise ModelImportError(f"{path} keeps its weights in an external file that is missing: {missing}",
                               f"put {missing} beside the model (Brevitas' dynamo exporter writes it next to "
                               "the .onnx), or export with the weights inside")
    from onnx.external_data_helper import uses_external_data

    locs = {next(e.value for e in t.external_data if e.key == "location")
            for t in proto.graph.initializer if uses_external_data(t)}
    return [Path(path).parent / loc for loc in sorted(locs)]


def load_proto(path: Path):
    path = Path(path)
    proto = _parse(path)
    missing = _missing_external(proto, path.parent)
    if missing:
        raise ModelImportError(f"{path} keeps its weights in an external file that is missing: {missing}",
                               f"put {missing} beside the model (Brevitas' dynamo exporter writes it next to "
                               "the .onnx), or export with the weights inside")
    try:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(proto, str(path.parent))
    except (OSError, ValueError) as exc:
        raise ModelImportError(f"cannot read the external weights of {path}: {exc}",
                               "the .onnx.data file is truncated or belongs to another export: export again") from None
    return proto


def _missing_external(proto, base: Path) -> str | None:
    from onnx.external_data_helper import uses_external_data

    for t in proto.graph.initializer:
        if uses_external_data(t):
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc is not None and (Path(loc).is_absolute() or ".." in Path(loc).parts):
                raise ModelImportError(f"the model's external data location {loc!r} points outside its folder",
                                       "keep the .onnx.data file beside the model, named relatively")
            if loc is None or not (base / loc).is_file():
                return loc or "(unnamed)"
    return None


def load_qonnx(path: Path):
    """A cleaned qonnx ModelWrapper of the file, shapes inferred."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    proto = load_proto(path)
    try:
        model = cleanup_model(ModelWrapper(proto))
    except Exception as exc:  # noqa: BLE001 - qonnx raises many kinds on malformed graphs
        raise ModelImportError(f"qonnx cannot clean up {path}: {type(exc).__name__}: {exc}",
                               "check the model with onnx.checker.check_model; export it again") from None
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise ModelImportError(f"{path} has {len(model.graph.input)} inputs and {len(model.graph.output)} outputs",
                               "insitu builds models with one input and one output")
    return model
