"""TRL's ``RewardTrainer`` on the packaged backbone, offline, on CPU, in fp32 (lesson 08).

Needs the ``real`` extra plus ``trl`` (which brings ``datasets`` and ``accelerate``); nothing here is
imported by ``import rmlib``. The helpers only remove boilerplate; every TRL call they make is one a
reader would write: ``AutoModelForSequenceClassification.from_pretrained`` + ``rmlib.layer_init`` on the
head, a ``RewardConfig``, ``RewardTrainer(...)``. What TRL computes is recorded, not re-implemented:
:func:`record_head` hooks the score head and keeps what it reads and what it returns.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from rmlib.init import layer_init
from rmlib.lab import real

# TRL's RewardConfig defaults that a CPU lesson must override, and why (each is explained in lesson 08).
CPU_FP32 = {
    "bf16": False,  # RewardConfig turns bf16 autocast on unless fp16 is set; we measure fp32
    "use_cpu": True,
    "gradient_checkpointing": False,  # TRL's default is True: recomputes activations, ~20% slower
    "report_to": "none",  # no tracker (wandb, tensorboard) and no network
    "save_strategy": "no",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
    "logging_steps": 1,  # log every step: the first log is the untrained model
}


def trl_missing() -> str | None:
    """One line naming what to install for lesson 08, or None when TRL and the real extra are there."""
    import importlib.util

    missing = list(real.missing_real_dependencies())
    if importlib.util.find_spec("trl") is None:
        missing.append("trl")
    if not missing:
        return None
    return f"lesson 08 needs {', '.join(missing)}, not installed: pip install -r requirements.txt"


def tokenise_pairs(tokenizer: Any, rows: Sequence[dict]) -> Any:
    """A ``datasets.Dataset`` of pre-tokenised pairs (``chosen_ids``, ``rejected_ids``): prompt + response.

    TRL skips its own text processing for such a dataset. That is the workaround for BERT tokenizers,
    which have no eos token and crash TRL's text path, and it tokenises once for every run.
    """
    from datasets import Dataset

    if not rows:
        raise ValueError("no pairs to tokenise")
    chosen = tokenizer([row["prompt"] + row["chosen"] for row in rows])["input_ids"]
    rejected = tokenizer([row["prompt"] + row["rejected"] for row in rows])["input_ids"]
    return Dataset.from_dict({"chosen_ids": chosen, "rejected_ids": rejected})


def reward_model(std: float, generator: torch.Generator | None = None, path: str | None = None,
                 train_from_layer: int | None = None) -> nn.Module:
    """The packaged backbone as ``AutoModelForSequenceClassification(num_labels=1)``, head re-drawn by ``layer_init``.

    ``train_from_layer=k`` freezes the embeddings and encoder layers below k (the forward still runs
    through them), so a CPU step costs a fraction of full fine-tuning. The head's bias is left alone,
    as ``layer_init`` does (transformers initialises it to 0).
    """
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path or real.packaged_checkpoint_path(), num_labels=1)
    layer_init(real.head_module(model), std, generator=generator)
    if train_from_layer is not None:
        freeze_below(model, train_from_layer)
    return model


def freeze_below(model: nn.Module, layer: int) -> nn.Module:
    """Freeze the embeddings and encoder layers 0 … layer−1 of a BERT classifier; the rest trains."""
    n_layers = model.config.num_hidden_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n_layers:
        raise ValueError(f"layer must be an int in 0..{n_layers}, got {layer!r}")
    base = model.base_model
    base.embeddings.requires_grad_(False)
    for block in base.encoder.layer[:layer]:
        block.requires_grad_(False)
    return model


def reward_config(**overrides: Any) -> Any:
    """``trl.RewardConfig`` with :data:`CPU_FP32` and a temporary output folder; ``overrides`` win.

    The temporary folder lives as long as the config (a trainer holds its config, so as long as the
    trainer): it is removed when the config is garbage-collected or, if the config is still alive, when
    the interpreter (or notebook kernel) exits. An ``output_dir`` passed in ``overrides`` is left alone.
    """
    from trl import RewardConfig

    if "output_dir" in overrides:
        return RewardConfig(**{**CPU_FP32, **overrides})
    folder = tempfile.mkdtemp(prefix="rmlib-trl-")
    try:
        config = RewardConfig(**{"output_dir": folder, **CPU_FP32, **overrides})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # weakref.finalize also runs at interpreter exit (atexit=True) for configs that are still alive.
    weakref.finalize(config, shutil.rmtree, folder, ignore_errors=True)
    return config


@dataclass
class HeadRecord:
    """What the score head read (``inputs``, one row per sequence) and returned (``rewards``), per forward call."""

    inputs: list[torch.Tensor] = field(default_factory=list)
    rewards: list[torch.Tensor] = field(default_factory=list)
    cls: list[torch.Tensor] = field(default_factory=list)  # the raw [CLS] state below the pooler

    def cls_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_[CLS] chosen, h_[CLS] rejected), concatenated over calls: what the head does NOT read."""
        halves = [torch.chunk(t, 2) for t in self.cls]
        return torch.cat([a for a, _ in halves]), torch.cat([b for _, b in halves])

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(h_chosen, h_rejected, r_chosen, r_rejected), concatenated over calls.

        TRL's collator stacks a batch as [chosen…, rejected…], so each call splits in halves.
        """
        if not self.inputs:
            raise ValueError("the head has not been called yet")
        halves = [torch.chunk(t, 2) for t in self.inputs]
        r_halves = [torch.chunk(t, 2) for t in self.rewards]
        return (torch.cat([a for a, _ in halves]), torch.cat([b for _, b in halves]),
                torch.cat([a for a, _ in r_halves]), torch.cat([b for _, b in r_halves]))


@contextlib.contextmanager
def record_head(model: nn.Module) -> Iterator[HeadRecord]:
    """Hook the score head of a BERT classifier while the block runs, and record its input and output.

    For BERT the head sees one row per sequence (the pooler output), so its output is the reward
    TRL reads. (A decoder's ``score`` runs on every position; use :func:`rmlib.lab.real.head_input_states`.)
    """
    if real.head_input_kind(model) != "pooler":
        raise ValueError("record_head records per-sequence heads (BERT); for decoders use real.head_input_states")
    record = HeadRecord()

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        record.inputs.append(args[0].detach().float().clone())
        record.rewards.append(output.detach().float().squeeze(-1).clone())

    def cls_hook(module: nn.Module, args: tuple) -> None:
        record.cls.append(args[0][:, 0].detach().float().clone())

    handles = [real.head_module(model).register_forward_hook(hook),
               model.base_model.pooler.register_forward_pre_hook(cls_hook)]
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()


def quiet() -> None:
    """Silence transformers' and datasets' progress bars and info logs (warnings and errors still show)."""
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()


def make_trainer(model: Any, train: Any, test: Any, tokenizer: Any, **config: Any) -> Any:
    """``RewardTrainer(model, reward_config(**config), train, test, tokenizer)``, without the per-step log print."""
    from transformers.trainer_callback import PrinterCallback
    from trl import RewardTrainer

    built = RewardTrainer(model=model, args=reward_config(**config), train_dataset=train, eval_dataset=test,
                          processing_class=tokenizer)
    built.remove_callback(PrinterCallback)
    return built


def evaluate(built: Any) -> tuple[dict[str, float], HeadRecord]:
    """``built.evaluate()`` with the head recorded: TRL's metrics and the rewards and states behind them."""
    with record_head(built.model) as record:
        metrics = built.evaluate()
    return metrics, record


def trl_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """The accuracy TRL's ``RewardTrainer`` logs: ``(r_c > r_r).mean()``, so a tie counts as wrong."""
    return (chosen > rejected).float().mean()


__all__ = [
    "CPU_FP32",
    "HeadRecord",
    "evaluate",
    "freeze_below",
    "quiet",
    "record_head",
    "reward_config",
    "reward_model",
    "tokenise_pairs",
    "make_trainer",
    "trl_accuracy",
    "trl_missing",
]
