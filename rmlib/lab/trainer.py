"""TRL's ``RewardTrainer`` on the packaged backbone, offline, on CPU, in fp32 (lesson 08).

Needs the ``real`` extra plus ``trl`` (which brings ``datasets`` and ``accelerate``); nothing here is
imported by ``import rmlib``. The helpers only remove boilerplate; every TRL call they make is one a
reader would write: ``AutoModelForSequenceClassification.from_pretrained`` + ``rmlib.layer_init`` on the
head, a ``RewardConfig``, ``RewardTrainer(...)``. What TRL computes is recorded, not re-implemented:
:func:`record_head` hooks the score head and keeps what it reads and what it returns.

The lesson's longest runs, section 5a's with nothing frozen (:func:`full_training`), can run in a child
process that the lesson starts in its first cell (:func:`start_full_training`) and collects in section 5a.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from rmlib.init import layer_init
from rmlib.lab import backbone, reviews
from rmlib.lab.child import ChildRun, report
from rmlib.lab.head_input import head_input_kind, head_module
from rmlib.seeding import make_generator
from rmlib.utils import validation
from rmlib.utils.extras import Extra

# Lesson 08 needs the real backbone and TRL (which brings datasets and accelerate).
EXTRA = Extra("real,trainer", {**backbone.EXTRA.modules, "trl": "trl"})

# TRL's RewardConfig defaults that a CPU lesson must override, and why (each is explained in lesson 08).
CPU_FP32 = {
    "bf16": False,  # RewardConfig turns bf16 autocast on unless fp16 is set; we measure fp32
    "use_cpu": True,
    "gradient_checkpointing": False,  # TRL's default is True: it recomputes activations to save memory; slower
    "report_to": "none",  # no tracker (wandb, tensorboard) and no network
    "save_strategy": "no",
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
    "logging_steps": 1,  # log every step: the first log is the untrained model
}


def trl_missing() -> str | None:
    """One line naming what to install for lesson 08, or None when TRL and the real extra are there."""
    return EXTRA.message("Lesson 08")


def tokenise_pairs(tokenizer: Any, rows: Sequence[dict]) -> Any:
    """A ``datasets.Dataset`` of pre-tokenised pairs (``chosen_ids``, ``rejected_ids``): prompt + response.

    TRL skips its own text processing for such a dataset. That is the workaround for BERT tokenizers,
    which have no eos token and crash TRL's text path, and it tokenises once for every run.
    """
    from datasets import Dataset

    if not rows:
        raise ValueError("no pairs to tokenise: rows is empty")
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

    model = AutoModelForSequenceClassification.from_pretrained(path or backbone.packaged_checkpoint_path(), num_labels=1)
    layer_init(head_module(model), std, generator=generator)
    if train_from_layer is not None:
        freeze_below(model, train_from_layer)
    return model


def freeze_below(model: nn.Module, layer: int) -> nn.Module:
    """Freeze the embeddings and encoder layers 0 … layer−1 of a BERT classifier; the rest trains."""
    validation.integer("layer", layer, minimum=0, maximum=model.config.num_hidden_layers)
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
    TRL reads. (A decoder's ``score`` runs on every position; use :func:`rmlib.lab.head_input.head_input_states`.)
    """
    if head_input_kind(model) != "pooler":
        raise ValueError("record_head records per-sequence heads (BERT); for decoders use head_input.head_input_states")
    record = HeadRecord()

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        record.inputs.append(args[0].detach().float().clone())
        record.rewards.append(output.detach().float().squeeze(-1).clone())

    def cls_hook(module: nn.Module, args: tuple) -> None:
        record.cls.append(args[0][:, 0].detach().float().clone())

    handles = [head_module(model).register_forward_hook(hook),
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


def head_bias_gradient(head: nn.Linear, inputs: torch.Tensor) -> torch.Tensor:
    """The gradient TRL's Bradley-Terry loss puts on the head's bias for one batch, replayed from the head up.

    ``inputs`` are what the head reads for one batch as TRL stacks it, ``[chosen…, rejected…]`` (2B rows);
    the loss is the mean Bradley-Terry loss of ``torch.chunk(head(inputs).squeeze(-1), 2)``, as in
    ``RewardTrainer.compute_loss``. Exactly, the bias gradient is zero; in float32 it is one sum over
    ``[−g₁ … −g_B, +g₁ … +g_B]`` whose rounding depends on B (lesson 08 compares this with TRL's own
    ``compute_loss``, bit for bit). Leaves ``head``'s gradients as they were.
    """
    from rmlib.losses import bradley_terry_loss

    validation.instance("head", head, nn.Linear)
    validation.float_tensor("inputs", inputs, ndim=2)
    if inputs.shape[0] % 2:
        raise ValueError(f"inputs must be (2B, d) with chosen rows then rejected rows, got shape {tuple(inputs.shape)}")
    if head.bias is None:
        raise ValueError("the head has no bias")
    bias = head.bias.detach().clone().requires_grad_(True)
    rewards = nn.functional.linear(inputs, head.weight.detach(), bias).squeeze(-1)
    chosen, rejected = torch.chunk(rewards, 2)
    (grad,) = torch.autograd.grad(bradley_terry_loss(chosen, rejected), bias)
    return grad


def epoch_batches(n_pairs: int, batch_size: int, epochs: int, generator: torch.Generator) -> torch.Tensor:
    """(steps, 2·batch_size) rows of a (2·n_pairs, d) feature table [chosen…, rejected…], TRL's way per batch.

    Each epoch visits the pairs in a fresh random order (incomplete last batches are dropped); each
    row of the result is one batch, its chosen rows then the rows of their rejected partners.
    """
    n_pairs = validation.integer("n_pairs", n_pairs)
    batch_size = validation.integer("batch_size", batch_size)
    epochs = validation.integer("epochs", epochs)
    if batch_size > n_pairs:
        raise ValueError(f"batch_size {batch_size} is larger than the {n_pairs} pairs")
    per_epoch = n_pairs // batch_size
    order = torch.stack([torch.randperm(n_pairs, generator=generator)[: per_epoch * batch_size]
                         for _ in range(epochs)]).view(-1, batch_size)
    return torch.cat([order, order + n_pairs], 1)


def train_heads(features: torch.Tensor, batches: torch.Tensor, w0: torch.Tensor, b0: torch.Tensor, lr: float,
                max_grad_norm: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Train R score heads (weight ``w0`` (R, d), bias ``b0`` (R,)) on fixed head inputs with TRL's optimiser.

    What ``RewardTrainer`` does when everything below the head is frozen, for R runs at once: per step,
    run r reads ``features[batches[r, step]]`` ([chosen…, rejected…]), takes the mean Bradley-Terry loss,
    clips its own gradient (weight and bias together) to norm ``max_grad_norm`` as the Trainer does,
    and takes a ``torch.optim.AdamW(fused=True)`` step (the Trainer's default ``adamw_torch_fused``:
    betas (0.9, 0.999), eps 1e-8, no weight decay) at a learning rate that falls linearly from ``lr``
    to 0 with no warm-up (``lr_scheduler_type="linear"``). Adam acts element by element, so one
    optimiser over the stacked runs is R independent ones. Returns the final (weights, biases).
    """
    from rmlib.losses import bradley_terry_loss

    validation.float_tensor("w0", w0, ndim=2)
    validation.float_tensor("b0", b0, ndim=1)
    if b0.shape != w0.shape[:1]:
        raise ValueError(f"w0 must be (R, d) and b0 (R,), got {tuple(w0.shape)} and {tuple(b0.shape)}")
    validation.index_tensor("batches", batches, ndim=3)
    if batches.shape[0] != w0.shape[0] or batches.shape[2] % 2:
        raise ValueError(f"batches must be (R, steps, 2B) with R = {w0.shape[0]}, got {tuple(batches.shape)}")
    validation.float_tensor("features", features, ndim=2)
    validation.features("features", features, w0.shape[1])
    lr = validation.real("lr", lr, positive=True)
    max_grad_norm = validation.real("max_grad_norm", max_grad_norm, positive=True)
    steps, half = batches.shape[1], batches.shape[2] // 2
    weight = w0.detach().clone().float().requires_grad_(True)
    bias = b0.detach().clone().float().requires_grad_(True)
    optimizer = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=0.0, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.0, (steps - k) / steps))
    for step in range(steps):
        inputs = features[batches[:, step]]  # (R, 2B, d)
        rewards = torch.baddbmm(bias[:, None, None], inputs, weight[:, :, None]).squeeze(-1)
        loss = bradley_terry_loss(rewards[:, :half], rewards[:, half:], reduction="none").mean(1)
        optimizer.zero_grad()
        loss.sum().backward()  # runs do not interact: each gets its own mean loss's gradient
        with torch.no_grad():
            norm = (weight.grad.pow(2).sum(1) + bias.grad.pow(2)).sqrt()
            clip = (max_grad_norm / (norm + 1e-6)).clamp(max=1.0)  # torch.nn.utils.clip_grad_norm_'s rule
            weight.grad.mul_(clip[:, None])
            bias.grad.mul_(clip)
        optimizer.step()
        schedule.step()
    return weight.detach(), bias.detach()


def trl_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """The accuracy TRL's ``RewardTrainer`` logs: ``(rewards_chosen > rewards_rejected).mean()``, so a tie
    counts as wrong."""
    return (chosen > rejected).float().mean()


# --- lesson 08's full-training control (section 5a), in a child process --------------------------------

FULL_TRAINING_TAG = "FULL_TRAINING_RESULT "  # the child's one line of JSON among whatever the libraries print


def full_training(stds: dict[str, float], head_seed: int, **config: Any) -> dict[str, dict[str, float]]:
    """Lesson 08's section 5a in this process: one ``RewardTrainer`` run per head std, with nothing frozen.

    Each run is the lesson's: :func:`reward_model` with the head drawn from ``make_generator(head_seed)``,
    :func:`make_trainer` on the training pairs of :mod:`rmlib.lab.reviews` with ``config``, ``train()``,
    then :func:`evaluate` on the held-out pairs. Returns, per label of ``stds``, the held-out reward std
    (``"std"``) and how far the head moved (``"moved"``, the largest |w − w₀|).
    """
    from transformers import AutoTokenizer

    stds, head_seed = _full_training_arguments(stds, head_seed)
    quiet()
    tokenizer = AutoTokenizer.from_pretrained(backbone.packaged_checkpoint_path())
    train = tokenise_pairs(tokenizer, reviews.load_reviews("train"))
    test = tokenise_pairs(tokenizer, reviews.load_reviews("test"))
    runs = {}
    for label, std in stds.items():
        model = reward_model(std, make_generator(head_seed))  # nothing frozen
        built = make_trainer(model, train, test, tokenizer, **config)
        w0 = head_module(built.model).weight.detach().clone()
        built.train()
        _, record = evaluate(built)
        runs[label] = dict(std=torch.cat(record.pairs()[2:]).std().item(),
                           moved=(head_module(built.model).weight.detach() - w0).abs().max().item())
    return runs


@dataclass(frozen=True)
class FullTraining:
    """What :func:`full_training` returned in the child, and how the child ran."""

    runs: dict[str, dict[str, float]]  # label -> {"std": held-out reward std, "moved": max |w - w0|}
    threads: int  # torch's intra-op threads in the child: those of the process that started it
    seconds: float  # wall time from the start to the child's end, its start-up and imports included


def start_full_training(stds: dict[str, float], head_seed: int, timeout: float = 900.0,
                        **config: Any) -> FullTrainingRun:
    """Start :func:`full_training` in a child process and return at once; ``.result()`` waits for it.

    Its runs need nothing the lesson computes before section 5a, so lesson 08 starts them in its first
    cell: on a second core they train while the lesson runs instead of after it (on one core the two
    share it, and the child's start-up, a few seconds of imports, is the cost). The child uses this
    process's number of torch threads, so its float32 sums are split, and rounded, as they would be
    here: the same numbers either way (one and two threads differ in the last bits of these runs).
    ``timeout`` (seconds from the start) only stops a child that hangs.
    """
    stds, head_seed = _full_training_arguments(stds, head_seed)
    timeout = validation.real("timeout", timeout, positive=True)
    missing = trl_missing()
    if missing:
        raise ImportError(missing)
    threads = torch.get_num_threads()
    try:
        spec = json.dumps(dict(stds=stds, head_seed=head_seed, config=config, threads=threads))
    except TypeError as err:  # caught here rather than as a failed child
        raise TypeError(f"config must hold JSON values (numbers, strings, lists, dicts): {err}") from None
    command = [sys.executable, "-m", "rmlib.lab.trainer", spec]
    return FullTrainingRun(ChildRun(command, FULL_TRAINING_TAG, "full-training", timeout), stds, head_seed, config)


class FullTrainingRun:
    """:func:`full_training`'s child process, started; ``result()`` waits for it (once) and returns its numbers.

    ``stds``, ``head_seed`` and ``config`` are what it was started with. A run dropped before its result
    is collected (a notebook's first cell run again) stops its child.
    """

    def __init__(self, child: ChildRun, stds: dict[str, float], head_seed: int, config: dict[str, Any]):
        self.child, self.stds, self.head_seed, self.config = child, stds, head_seed, config
        self._result: FullTraining | None = None

    def result(self) -> FullTraining:
        if self._result is None:
            self._result = FullTraining(**self.child.measured())
        return self._result


def _full_training_arguments(stds: Any, head_seed: Any) -> tuple[dict[str, float], int]:
    validation.instance("stds", stds, dict)
    if not stds:
        raise ValueError("stds must name at least one head std")
    checked = {validation.string("a label of stds", label): validation.real(f"stds[{label!r}]", std, minimum=0.0)
               for label, std in stds.items()}
    return checked, validation.integer("head_seed", head_seed, minimum=0)


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """The child process's work: :func:`full_training` with the parent's number of torch threads."""
    torch.set_num_threads(spec["threads"])
    runs = full_training(spec["stds"], spec["head_seed"], **spec["config"])
    return dict(runs=runs, threads=torch.get_num_threads())


__all__ = [
    "CPU_FP32",
    "HeadRecord",
    "epoch_batches",
    "evaluate",
    "freeze_below",
    "full_training",
    "FullTraining",
    "FullTrainingRun",
    "head_bias_gradient",
    "quiet",
    "record_head",
    "reward_config",
    "reward_model",
    "start_full_training",
    "tokenise_pairs",
    "make_trainer",
    "train_heads",
    "trl_accuracy",
    "trl_missing",
]


if __name__ == "__main__":  # the child of start_full_training: one JSON argument in, one tagged JSON line out
    report(FULL_TRAINING_TAG, _child(json.loads(sys.argv[1])))
