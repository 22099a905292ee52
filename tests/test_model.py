"""The tiny reward model has HF's anatomy: backbone → hidden states → score → reward at the last token."""

import pytest
import torch
from torch import nn

from rmlib import RewardModelConfig, TinyRewardModel
from rmlib.model import random_token_batch
from rmlib.seeding import make_generator


@pytest.fixture
def model():
    return TinyRewardModel(RewardModelConfig(hidden_size=32, num_attention_heads=4), seed=0)


def test_anatomy_names_match_hugging_face(model):
    assert model.config.hidden_size == 32
    assert isinstance(model.score, nn.Linear)
    assert model.score.weight.shape == (1, 32) and model.score.bias is None


def test_reward_is_the_score_of_the_last_hidden_state(model):
    ids = random_token_batch(5, 12, model.config, make_generator(0))
    rewards = model(ids)
    assert rewards.shape == (5,)
    h = model.hidden_states(ids)
    assert h.shape == (5, 12, 32)
    # assert_close's float32 defaults (atol 1e-5, rtol 1.3e-6) in this file: the two paths gave identical
    # numbers under the default, AVX2 and AVX-512 kernels and MKL_CBWR=COMPATIBLE; the padded-vs-alone
    # comparison below differs by <= 3e-7 (two ulps of rewards of size ~0.9). A wrong token or a missing
    # mask moves rewards by ~0.1.
    torch.testing.assert_close(rewards, (h[:, -1] @ model.score.weight.T).squeeze(-1))


def test_backbone_is_causal(model):
    ids = random_token_batch(2, 10, model.config, make_generator(1))
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % model.config.vocab_size
    torch.testing.assert_close(model.hidden_states(ids)[:, :-1], model.hidden_states(changed)[:, :-1])


def test_attention_mask_selects_the_last_real_token(model):
    ids = random_token_batch(3, 8, model.config, make_generator(2))
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 1 + [0] * 7])
    rewards = model(ids, mask)
    for i, length in enumerate([8, 5, 1]):
        torch.testing.assert_close(rewards[i], model(ids[i : i + 1, :length])[0])


def test_seed_makes_construction_reproducible_without_touching_global_rng():
    state = torch.random.get_rng_state()
    a, b = TinyRewardModel(seed=3), TinyRewardModel(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_bad_inputs_get_clear_errors(model):
    with pytest.raises(TypeError, match="LongTensor"):
        model(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="seq_len"):
        model(torch.zeros(2, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((2, 4), 64, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask shape"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 5))
    with pytest.raises(ValueError, match="at least one real token"):
        model(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4))


@pytest.mark.parametrize("kwargs, error, name", [
    ({"hidden_size": 30, "num_attention_heads": 4}, ValueError, "divisible"),
    ({"vocab_size": 0}, ValueError, "config.vocab_size"),
    ({"hidden_size": 8.0}, TypeError, "config.hidden_size"),
])
def test_bad_configs_are_rejected(kwargs, error, name):
    with pytest.raises(error, match=name):
        RewardModelConfig(**kwargs)
