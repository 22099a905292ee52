"""What the score head of each architecture reads, and the hidden states of sentences a backbone produces.

A ``*ForSequenceClassification`` head does not read one fixed token: BERT's reads the pooler output,
a decoder's the last token that is not padding. This module knows which, per architecture, and
returns that tensor; it needs ``transformers`` only for models that are not BERT.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Literal, Sequence

import torch
from torch import nn

from rmlib.lab.backbone import LoadedBackbone
from rmlib.utils import validation


def _shipped_sentences() -> tuple[str, ...]:
    path = resources.files("rmlib.lab") / "data" / "sentences.jsonl"
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)


# A fixed set of sentences (prompts and responses of the kind a reward model scores), shipped in
# data/sentences.jsonl so the measurements need no data set download.
SENTENCES: tuple[str, ...] = _shipped_sentences()

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


__all__ = [
    "HEAD_INPUTS",
    "SENTENCES",
    "head_input_kind",
    "head_input_states",
    "head_module",
    "last_non_pad_index",
    "sentence_hidden_states",
]
