"""Tests of rmlib.lab.reviews: the shipped preference set is what its script generates, and its labels
follow the stated Bradley-Terry rule on the stated true reward."""

from __future__ import annotations

import math

import pytest
import torch

from rmlib.lab import reviews


def test_shipped_file_is_what_the_script_writes():
    assert reviews.data_path().read_text(encoding="utf-8") == reviews.to_jsonl(reviews.generate())


def test_size_splits_and_same_prompt_pairs():
    rows = reviews.load_reviews()
    assert len(rows) == len(reviews.ITEMS) * reviews.PAIRS_PER_PROMPT >= 200
    train, test = reviews.load_reviews("train"), reviews.load_reviews("test")
    assert len(train) + len(test) == len(rows) and len(test) >= 80
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}  # held-out prompts are unseen
    for row in rows:
        assert row["chosen"] != row["rejected"] and row["prompt"].endswith("\n")
        assert row["true_chosen"] == reviews.true_reward(row["chosen"])
        assert row["true_rejected"] == reviews.true_reward(row["rejected"])
        assert row["true_chosen"] != row["true_rejected"]  # every pair has a true winner


def test_true_reward_is_the_lexicon_sum():
    assert reviews.true_reward("Superb rooms, awful staff.") == 0.0
    assert reviews.true_reward("DECENT coffee, excellent cakes.") == 3.0
    assert reviews.true_reward("no adjectives here") == 0.0
    with pytest.raises(TypeError, match="string"):
        reviews.true_reward(3)


def test_label_noise_matches_bradley_terry():
    """P(label disagrees with r*) = σ(−β|Δr*|) per pair: the count of flips matches its expectation."""
    rows = reviews.load_reviews()
    delta = torch.tensor([r["true_chosen"] - r["true_rejected"] for r in rows], dtype=torch.float64)
    p_flip = torch.sigmoid(-reviews.BETA * delta.abs())
    flips = (delta < 0).sum().item()
    # Sum of independent Bernoullis: mean Σp, variance Σp(1−p); allow 4 standard deviations.
    assert abs(flips - p_flip.sum().item()) < 4 * math.sqrt((p_flip * (1 - p_flip)).sum().item())
    assert flips > 0  # there is label noise to measure


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        reviews.load_reviews("validation")
    with pytest.raises(ValueError, match="beta"):
        reviews.generate(beta=0.0)
    with pytest.raises(TypeError, match="beta"):
        reviews.generate(beta="1")
