"""Lesson 07's ZeRO-3 experiment, run with the real DeepSpeed on one CPU process.

``run_zero3_experiment()`` (or ``start_zero3_experiment().result()``) runs a child Python process that

1. builds a plain ``nn.Linear(fan_in, 1)`` inside ``deepspeed.zero.Init`` and gathers it: what
   PyTorch's default init left in the shards;
2. saves a tiny Llama causal LM (random weights, nothing downloaded) and loads it back with
   ``AutoModelForSequenceClassification.from_pretrained(..., num_labels=1)`` under a ZeRO-3 config,
   the call open-instruct's ``reward_modeling.py`` makes (accelerate turns ``zero.Init`` on for
   stage 3 by default); ``score`` is a new, missing-from-the-checkpoint weight; then it replays the
   one line with which transformers collects the missing weights to gather before initialising them,
   as transformers < 5.0 wrote it (``state_dict()``: detached tensors) and as 5.0 does
   (``state_dict(keep_vars=True)``: the parameters), and counts what ``GatheredParameters`` gathers;
3. calls ``layer_init(model.score, 1/sqrt(d+1))`` as open-instruct does, outside any
   ``GatheredParameters``;
4. does it again the way OpenRLHF does: inside ``GatheredParameters([weight], modifier_rank=0)``,
   on rank 0;
5. redraws it with std 1 inside ``GatheredParameters(..., modifier_rank=None)``, the default;
6. repeats 5 on a small layer with ZeRO's ``"enable_sanity_checks": true``, once with an init call and
   once through ``weight.data``.

After each step it gathers the full weight and reports it. The numbers come back as a ``Zero3Result``.

Why a child process: ``zero.Init`` patches every ``nn.Module`` subclass while it is active and
DeepSpeed starts a ``torch.distributed`` process group that lives until the process ends; a child
keeps the notebook's kernel as it was and can be stopped by a timeout instead of hanging a lesson.

The rank is a real single-rank ``gloo`` process group (file rendezvous, no network) and DeepSpeed's
CPU accelerator (``DS_ACCELERATOR=cpu``). What one rank cannot show is the broadcast to other ranks
on leaving ``GatheredParameters``; the shard bookkeeping that makes the naive call a no-op is the same
on every rank.

DeepSpeed is an optional extra of the course (``pip install -e ".[zero3]"``); this module does not
import it, so ``import rmlib`` never needs it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch

from rmlib.lab.child import ChildRun, report
from rmlib.utils import validation
from rmlib.utils.extras import Extra

# transformers' HfDeepSpeedConfig is accelerate's (transformers/integrations/deepspeed.py).
EXTRA = Extra("zero3", {"deepspeed": "deepspeed", "transformers": "transformers", "accelerate": "accelerate"})
INSTALL_HINT = EXTRA.install
# The smallest config that turns ZeRO stage 3 on; DeepSpeed wants a batch size in any config.
DS_CONFIG = {"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1}
RESULT_TAG = "ZERO3_RESULT "  # the child's one line of JSON; DeepSpeed logs to stdout too


@dataclass(frozen=True)
class Zero3Result:
    """What the child measured. Every ``*_std`` is the std of the *gathered* full weight."""

    deepspeed_version: str
    accelerator: str  # DeepSpeed's accelerator: "cpu"
    backend: str  # torch.distributed backend: "gloo"
    world_size: int
    # 1. a plain nn.Linear(fan_in, 1) built inside zero.Init
    fan_in: int
    linear_local_numel: int  # elements in the rank's `weight.data` outside GatheredParameters
    linear_full_shape: list[int]  # `weight.ds_shape`: the shape DeepSpeed keeps for gathering
    linear_std: float
    linear_max_abs: float
    # 2.-5. the score head of a Hugging Face reward model loaded with from_pretrained under ZeRO-3
    hidden_size: int
    initializer_range: float
    score_local_numel: int
    score_full_shape: list[int]
    score_std_loaded: float  # after from_pretrained
    transformers_version: str
    # 2b. what GatheredParameters gathers from the list transformers hands it for the missing weights
    detached_with_ds_id: int  # of state_dict().values() (transformers < 5.0): tensors carrying a ds_id
    kept_with_ds_id: int  # of state_dict(keep_vars=True).values() (transformers >= 5.0)
    n_state_tensors: int  # entries of the state dict
    score_numel_in_detached_gather: int  # score.weight's elements inside GatheredParameters(state_dict())
    score_numel_in_kept_gather: int  # ...inside GatheredParameters(state_dict(keep_vars=True))
    target_std: float  # 1/sqrt(d+1)
    naive_unchanged: bool  # 3. gathered weight bit-identical before and after the naive layer_init
    score_std_naive: float
    gathered_equals_reference: bool  # 4. equals the same seeded draw made on a plain full tensor
    score_std_gathered: float
    modifier_none_changed_inside: bool  # 5. a change made under modifier_rank=None took effect inside...
    modifier_none_unchanged: bool  # ...and was thrown away on leaving the block
    sanity_checks_catch_init: bool  # 6. with "enable_sanity_checks": an init under modifier_rank=None raises
    sanity_checks_catch_data: bool  # ...and a change through `.data` raises
    seconds: float  # wall time of the child process, start-up and imports included


def missing_zero3_dependencies() -> list[str]:
    """PyPI names of the ``zero3`` extra's packages that are not installed (empty when all are)."""
    return EXTRA.missing()


def zero3_extra_message(missing: list[str] | None = None) -> str | None:
    """One line saying what is missing and how to install it, or None when nothing is."""
    return EXTRA.message("The ZeRO-3 experiment", missing_zero3_dependencies() if missing is None else missing)


def run_zero3_experiment(
    hidden_size: int = 512, fan_in: int = 4096, seed: int = 0, timeout: float = 180.0
) -> Zero3Result:
    """Run the experiment in a child process (see the module docstring) and return its numbers."""
    return start_zero3_experiment(hidden_size, fan_in, seed, timeout).result()


def start_zero3_experiment(
    hidden_size: int = 512, fan_in: int = 4096, seed: int = 0, timeout: float = 180.0
) -> Zero3Run:
    """Start the experiment's child process and return at once; ``.result()`` waits for its numbers.

    Lesson 07 starts it in its first cell, so the child's seconds of DeepSpeed start-up overlap the
    lesson's own cells on a second core instead of adding to them.
    """
    hidden_size = validation.integer("hidden_size", hidden_size, minimum=None)
    if hidden_size < 8 or hidden_size % 4:  # the tiny Llama has 4 attention heads
        raise ValueError(f"hidden_size must be a multiple of 4, at least 8; got {hidden_size}")
    fan_in = validation.integer("fan_in", fan_in)
    seed = validation.integer("seed", seed, minimum=0)
    timeout = validation.real("timeout", timeout, positive=True)
    missing = missing_zero3_dependencies()
    if missing:
        raise ImportError(zero3_extra_message(missing))
    command = [sys.executable, "-m", "rmlib.lab.zero3", str(hidden_size), str(fan_in), str(seed)]
    env = dict(os.environ, DS_ACCELERATOR="cpu", CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="false")
    return Zero3Run(ChildRun(command, RESULT_TAG, "ZeRO-3", timeout, env=env))


class Zero3Run:
    """The experiment's child process, started; ``result()`` waits for it (once) and returns its numbers."""

    def __init__(self, child: ChildRun):
        self.child = child
        self._result: Zero3Result | None = None

    def result(self) -> Zero3Result:
        if self._result is None:
            self._result = Zero3Result(**self.child.measured())
        return self._result


# --- the child process: one function per numbered step of the module docstring ----------------------

def _gathered(param: torch.nn.Parameter) -> torch.Tensor:
    """A copy of the full (gathered) value of a ZeRO-3 parameter."""
    import deepspeed

    with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
        return param.detach().clone()


def _start_single_rank(tmp: str) -> int:
    """A single-rank gloo process group through a file rendezvous in ``tmp``, and DeepSpeed on it; returns the rank."""
    # DeepSpeed skips its MPI discovery only when the launcher's variables are all set.
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29500", RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    import deepspeed

    # The CPU backend would JIT-compile a C++ shared-memory all-reduce kernel when the group starts
    # (about 40 s, and a compiler); one rank never all-reduces, so mark it unavailable with the switch
    # DeepSpeed itself reads (deepspeed/comm/torch.py: build_shm_op) and stay on plain gloo.
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    # A file rendezvous: no port to find, nothing on the network.
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=0, world_size=1)
    deepspeed.init_distributed(dist_backend="gloo")
    return torch.distributed.get_rank()


def _step1_default_init(fan_in: int, seed: int) -> dict:
    """1. A plain ``nn.Linear(fan_in, 1)`` built under ``zero.Init``: what PyTorch's default init left in the shards."""
    import deepspeed

    from rmlib.seeding import seed_everything

    seed_everything(seed)
    with deepspeed.zero.Init(config_dict_or_path=DS_CONFIG):
        linear = torch.nn.Linear(fan_in, 1, bias=False)
    local = linear.weight.numel()
    full = _gathered(linear.weight)
    return dict(fan_in=fan_in, linear_local_numel=local, linear_full_shape=list(linear.weight.ds_shape),
                linear_std=full.std().item(), linear_max_abs=full.abs().max().item())


def _step2_load_reward_model(tmp: str, hidden_size: int) -> tuple[torch.nn.Module, object, torch.Tensor, dict]:
    """2. open-instruct's model: ``from_pretrained(..., num_labels=1)`` with ZeRO-3 on, as accelerate sets it up.

    Returns the model, the object that keeps ZeRO-3 on while it lives, the gathered score weight as
    loaded, and what was measured.
    """
    import transformers
    from transformers import AutoModelForSequenceClassification, LlamaConfig, LlamaForCausalLM
    from transformers.integrations import HfDeepSpeedConfig

    config = LlamaConfig(vocab_size=128, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(f"{tmp}/base")
    zero3_on = HfDeepSpeedConfig(DS_CONFIG)  # transformers uses zero.Init while this object lives
    model = AutoModelForSequenceClassification.from_pretrained(f"{tmp}/base", num_labels=1)
    score = model.score.weight
    local = score.numel()
    loaded = _gathered(score)
    return model, zero3_on, loaded, dict(
        hidden_size=hidden_size, initializer_range=config.initializer_range, score_local_numel=local,
        score_full_shape=list(score.ds_shape), score_std_loaded=loaded.std().item(),
        transformers_version=transformers.__version__,
    )


def _step2b_missing_key_gathers(model: torch.nn.Module) -> dict:
    """2b. What ``GatheredParameters`` gathers from the list transformers hands it for the missing weights.

    transformers' ``_initialize_missing_keys`` (modeling_utils.py) gathers the weights it is about to
    initialise: 4.x collected them from ``state_dict()``, 5.0 from ``state_dict(keep_vars=True)``.
    """
    import deepspeed

    score = model.score.weight
    detached = list(model.state_dict().values())
    kept = list(model.state_dict(keep_vars=True).values())
    with deepspeed.zero.GatheredParameters(detached, modifier_rank=0):
        numel_detached = score.numel()
    with deepspeed.zero.GatheredParameters(kept, modifier_rank=0):
        numel_kept = score.numel()
    return dict(detached_with_ds_id=sum(hasattr(t, "ds_id") for t in detached),
                kept_with_ds_id=sum(hasattr(t, "ds_id") for t in kept), n_state_tensors=len(kept),
                score_numel_in_detached_gather=numel_detached, score_numel_in_kept_gather=numel_kept)


def _step3_naive_init(model: torch.nn.Module, loaded: torch.Tensor, target: float, seed: int) -> dict:
    """3. open-instruct's ``layer_init(model.score, 1/sqrt(d+1))``, outside any ``GatheredParameters``."""
    from rmlib.init import layer_init
    from rmlib.seeding import make_generator

    layer_init(model.score, target, generator=make_generator(seed))
    naive = _gathered(model.score.weight)
    return dict(target_std=target, naive_unchanged=torch.equal(naive, loaded), score_std_naive=naive.std().item())


def _step4_gathered_init(model: torch.nn.Module, rank: int, target: float, seed: int) -> tuple[torch.Tensor, dict]:
    """4. OpenRLHF's pattern: gather, let rank 0 draw, leave the block (broadcast and re-partition)."""
    import deepspeed

    from rmlib.init import layer_init
    from rmlib.seeding import make_generator

    score = model.score.weight
    with deepspeed.zero.GatheredParameters([score], modifier_rank=0):
        if rank == 0:
            layer_init(model.score, target, generator=make_generator(seed))
    drawn = _gathered(score)
    reference = torch.empty(tuple(score.ds_shape), dtype=score.dtype)
    reference.normal_(0.0, target, generator=make_generator(seed))  # the same draw on a plain full tensor
    return drawn, dict(gathered_equals_reference=torch.equal(drawn, reference), score_std_gathered=drawn.std().item())


def _step5_modifier_none(model: torch.nn.Module, drawn: torch.Tensor, seed: int) -> dict:
    """5. A redraw with std 1 under the default ``modifier_rank=None``: it takes effect inside, then is thrown away."""
    import deepspeed

    from rmlib.init import layer_init
    from rmlib.seeding import make_generator

    score = model.score.weight
    with deepspeed.zero.GatheredParameters([score], modifier_rank=None):
        layer_init(model.score, 1.0, generator=make_generator(seed + 1))
        changed_inside = not torch.equal(score.detach(), drawn)
    return dict(modifier_none_changed_inside=changed_inside,
                modifier_none_unchanged=torch.equal(_gathered(score), drawn))


def _step6_sanity_checks(seed: int) -> dict:
    """6. Step 5 under ZeRO's ``"enable_sanity_checks": true``, once with an init call and once through ``.data``.

    GatheredParameters compares the parameter's version counter, so an in-place init on the parameter
    is caught and a change through ``.data`` is not.
    """
    import deepspeed

    from rmlib.init import layer_init
    from rmlib.seeding import make_generator

    checked = {**DS_CONFIG, "zero_optimization": {"stage": 3, "enable_sanity_checks": True}}
    caught = {}
    for how in ("init", "data"):
        with deepspeed.zero.Init(config_dict_or_path=checked):
            probe = torch.nn.Linear(8, 1, bias=False)
        try:
            with deepspeed.zero.GatheredParameters([probe.weight], modifier_rank=None):
                if how == "init":
                    layer_init(probe, 1.0, generator=make_generator(seed))
                else:
                    probe.weight.data.mul_(10.0)
            caught[how] = False
        except RuntimeError as err:
            if "modifier_rank" not in str(err):
                raise
            caught[how] = True
    return dict(sanity_checks_catch_init=caught["init"], sanity_checks_catch_data=caught["data"])


def _child(hidden_size: int, fan_in: int, seed: int) -> Zero3Result:
    """The experiment of the module docstring, step by step, in this (child) process."""
    import deepspeed

    from rmlib.init import score_head_std

    with tempfile.TemporaryDirectory() as tmp:
        rank = _start_single_rank(tmp)
        measured = _step1_default_init(fan_in, seed)
        model, zero3_on, loaded, measured_2 = _step2_load_reward_model(tmp, hidden_size)
        measured |= measured_2
        measured |= _step2b_missing_key_gathers(model)
        target = score_head_std(hidden_size)
        measured |= _step3_naive_init(model, loaded, target, seed)
        drawn, gathered = _step4_gathered_init(model, rank, target, seed)
        measured |= gathered
        measured |= _step5_modifier_none(model, drawn, seed)
        del zero3_on
        measured |= _step6_sanity_checks(seed)
        result = Zero3Result(
            deepspeed_version=deepspeed.__version__,
            accelerator=deepspeed.get_accelerator().device_name(),
            backend=torch.distributed.get_backend(),
            world_size=torch.distributed.get_world_size(),
            seconds=0.0,  # the parent fills in the wall time from its start to the child's end
            **measured,
        )
        torch.distributed.destroy_process_group()
    return result


if __name__ == "__main__":
    hidden, fan, seed_arg = (int(arg) for arg in sys.argv[1:4])
    report(RESULT_TAG, asdict(_child(hidden, fan, seed_arg)))
