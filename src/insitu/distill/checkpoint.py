"""Checkpoints: the state dict with the config that built it; loaded with torch.load(weights_only=True)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from insitu.errors import CheckpointError
from insitu.rundir import atomic_write_bytes


def save_checkpoint(path: Path, model: nn.Module, kind: str, config: dict[str, Any], **extra: Any) -> None:
    buf = io.BytesIO()
    torch.save({"kind": kind, "config": config, "state_dict": model.state_dict(), **extra}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, model: nn.Module, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Load into `model`; the checkpoint must be of `kind` and built from `config`, or CheckpointError."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist", "run the stage that makes it first") from None
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        raise CheckpointError(f"cannot load checkpoint {path}: {type(exc).__name__}: {exc}",
                              "the file is damaged or not an insitu checkpoint; re-run its stage") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not an insitu checkpoint", "re-run the stage that makes it")
    if ckpt.get("kind") != kind or ckpt.get("config") != config:
        raise CheckpointError(
            f"checkpoint {path} is a {ckpt.get('kind')!r} built from {ckpt.get('config')}, "
            f"but a {kind!r} built from {config} was expected (another architecture)",
            "re-run the stage with this config, or point insitu at the matching run directory")
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit the model: {str(exc)[:400]}",
                              "re-run the stage that makes it") from None
    return ckpt
