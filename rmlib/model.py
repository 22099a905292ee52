"""A tiny reward model with the anatomy of Hugging Face's ``*ForSequenceClassification``.

token ids → backbone → hidden states (B, T, d) → ``score`` = Linear(d, 1, bias=False) → one reward
per sequence, read at the last real (non-padding) position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rmlib.utils import validation


@dataclass
class RewardModelConfig:
    """Sizes of a :class:`TinyRewardModel`; the field names follow Hugging Face configs."""

    vocab_size: int = 64
    hidden_size: int = 64
    num_hidden_layers: int = 1
    num_attention_heads: int = 4
    max_position_embeddings: int = 32
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "max_position_embeddings"):
            validation.integer(f"config.{name}", getattr(self, name))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads "
                f"{self.num_attention_heads}"
            )


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, written out (no fused kernel) so it is easy to read."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        self.n_heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (b, heads, t, d_head)
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        attn = scores.masked_fill(future, float("-inf")).softmax(-1)
        return self.out((attn @ v).transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: attention then MLP, each with a residual connection."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.ln1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyBackbone(nn.Module):
    """Token + position embeddings, a few causal blocks, and a final LayerNorm."""

    def __init__(self, config: RewardModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed_tokens(input_ids) + self.embed_positions(positions)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class TinyRewardModel(nn.Module):
    """Backbone + ``score`` head. ``model(input_ids)`` returns one reward per sequence, shape (B,).

    ``seed`` makes construction reproducible without touching torch's global generator.
    """

    def __init__(self, config: RewardModelConfig | None = None, seed: int | None = 0) -> None:
        super().__init__()
        self.config = config if config is not None else RewardModelConfig()
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.backbone = TinyBackbone(self.config)
            # As in HF: a bias-free Linear(hidden_size, num_labels=1), initialised by PyTorch's default.
            self.score = nn.Linear(self.config.hidden_size, 1, bias=False)

    def _check_ids(self, input_ids: torch.Tensor) -> None:
        if not torch.is_tensor(input_ids) or input_ids.dtype != torch.long or input_ids.dim() != 2:
            raise TypeError("input_ids must be a LongTensor of shape (batch, seq_len)")
        t = input_ids.shape[1]
        if not 1 <= t <= self.config.max_position_embeddings:
            raise ValueError(f"seq_len {t} outside 1..{self.config.max_position_embeddings}")
        if input_ids.min() < 0 or input_ids.max() >= self.config.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size})")

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Backbone output, shape (batch, seq_len, hidden_size)."""
        self._check_ids(input_ids)
        return self.backbone(input_ids)

    def last_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden state at each sequence's last real token, shape (batch, hidden_size).

        ``attention_mask`` (1 = token, 0 = right padding) picks the last real position, as HF does
        with the pad token; without it the last position is used.
        """
        h = self.hidden_states(input_ids)
        if attention_mask is None:
            return h[:, -1]
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
            )
        last = attention_mask.long().sum(1) - 1
        if (last < 0).any():
            raise ValueError("every sequence needs at least one real token in attention_mask")
        return h[torch.arange(h.shape[0]), last]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.score(self.last_hidden(input_ids, attention_mask)).squeeze(-1)


def random_token_batch(
    n: int, seq_len: int, config: RewardModelConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A batch of uniformly random token ids, shape (n, seq_len): stand-in "text" for the tiny model."""
    return torch.randint(0, config.vocab_size, (n, seq_len), generator=generator)


__all__ = ["RewardModelConfig", "TinyRewardModel", "TinyBackbone", "random_token_batch"]
