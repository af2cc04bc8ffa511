"""Which distillation a run does: label-free (soft labels only) or labelled, and why.

Decided from the split the data step made, so that a run whose data leaves no unlabelled pool either falls
back (auto) or stops before the teacher trains (an explicit label_free), never deep inside the distill step.
"""

from __future__ import annotations

from insitu.config import RunConfig
from insitu.errors import ConfigError


def resolve_mode(cfg: RunConfig, n_labelled: int, n_pool: int, n_images: int | None = None) -> tuple[str, str]:
    """The distillation mode and why. `auto` is label-free when the unlabelled pool outnumbers the labelled
    images, else labelled distillation on the training images; an explicit `label_free` needs a pool."""
    mode = cfg.distill.mode
    if mode == "label_free" and n_pool == 0:
        total = f" of the {n_images} images" if n_images is not None else ""
        raise ConfigError(f"distill.mode=label_free needs unlabelled images, but the split left none for the pool "
                          f"(data.n_pool={cfg.data.n_pool}; {n_labelled} training images{total})",
                          "provide more images (the pool takes what training and test leave), lower data.n_train "
                          "or data.n_test, or use distill.mode=auto or labelled")
    if mode != "auto":
        return mode, f"distill.mode={mode}"
    if n_pool > n_labelled:
        return "label_free", f"auto: the unlabelled pool ({n_pool}) outnumbers the labelled images ({n_labelled})"
    why = "is empty" if n_pool == 0 else f"({n_pool}) does not outnumber the labelled images ({n_labelled})"
    return "labelled", f"auto: the unlabelled pool {why}, so the student learns from the teacher and the labels " \
                       f"of the training images"
