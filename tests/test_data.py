"""make_preference_data: determinism, the true reward's scale, Bradley-Terry labels, bad arguments."""

import math

import pytest
import torch

from rmlib.data import MLPBackbone, PreferenceData, RewardMLP, make_preference_data
from rmlib.seeding import make_generator


@pytest.fixture(scope="module")
def data() -> PreferenceData:
    return make_preference_data(n_train=4096, n_test=1024, seed=3)


def test_shapes(data):
    assert data.train.x_chosen.shape == (4096, 32) and data.train.x_rejected.shape == (4096, 32)
    assert data.test.r_chosen.shape == (1024,) and len(data.test) == 1024
    assert data.input_dim == 32 and data.hidden_size == 64 and data.true_head.shape == (64,)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (make_preference_data(256, 64, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.train.x_chosen, b.train.x_chosen) and torch.equal(a.test.r_rejected, b.test.r_rejected)
    assert torch.equal(a.backbone.fc1.weight, b.backbone.fc1.weight)
    assert not torch.equal(a.train.x_chosen, c.train.x_chosen)


def test_true_rewards_are_u_dot_pretrained_features(data):
    # Same computation twice: bit-identical under every kernel set tried (default, AVX2, AVX-512,
    # MKL_CBWR=COMPATIBLE). allclose's rtol 1e-5 (~80 ulps at |r| <= 12) leaves room for a BLAS that
    # blocks the two products differently; a wrong head or feature map is off by O(1).
    assert torch.allclose(data.train.r_chosen, data.true_reward(data.train.x_chosen), atol=1e-6)
    assert torch.allclose(data.test.r_rejected, data.backbone(data.test.x_rejected) @ data.true_head, atol=1e-6)


def test_true_reward_std_and_unit_feature_scale(data):
    x = torch.randn(16384, 32, generator=make_generator(99))
    # The std of n = 16384 roughly Gaussian samples has relative error 1/sqrt(2n) = 0.55%; allow 5 of them.
    assert data.true_reward(x).std().item() == pytest.approx(2.0, rel=5 / math.sqrt(2 * 16384))
    # Features are rescaled to unit variance per dimension on average (same sampling error, averaged).
    assert data.backbone(x).var(0).mean().item() == pytest.approx(1.0, rel=5 * math.sqrt(2 / 16384))


def test_labels_follow_bradley_terry(data):
    # P(the chosen answer has the higher true reward) = σ(|Δ*|) for each pair, by construction. Compare
    # the observed count with its expectation; the binomial std is sqrt(Σ p(1−p)); allow 5 of them.
    tr = data.train
    p = torch.sigmoid((tr.r_chosen - tr.r_rejected).abs()).double()
    observed = (tr.r_chosen > tr.r_rejected).double().sum()
    assert abs(observed - p.sum()).item() < 5 * (p * (1 - p)).sum().sqrt().item()
    # And the labels are noisy: a sizeable fraction of pairs goes against the true reward.
    assert 0.05 < 1 - observed.item() / len(tr) < 0.4


def test_backbone_is_frozen_and_reward_mlp_wraps_it(data):
    assert not any(p.requires_grad for p in data.backbone.parameters())
    model = RewardMLP(MLPBackbone(32, 64))
    assert model(torch.zeros(5, 32)).shape == (5,) and model.score.bias is None


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"n_train": 0}, ValueError),
        ({"n_test": -1}, ValueError),
        ({"input_dim": 2.5}, TypeError),
        ({"hidden_size": True}, TypeError),
        ({"true_reward_std": 0.0}, ValueError),
        ({"true_reward_std": float("nan")}, ValueError),
        ({"true_reward_std": "2"}, TypeError),
        ({"seed": 1.5}, TypeError),
    ],
)
def test_bad_arguments(kwargs, err):
    name = next(iter(kwargs))
    with pytest.raises(err, match=name):
        make_preference_data(**{"n_train": 16, "n_test": 16, **kwargs})


def test_validation_split_leaves_train_and_test_unchanged():
    a, b = make_preference_data(128, 64, seed=5, n_val=32), make_preference_data(128, 64, seed=5, n_val=256)
    assert torch.equal(a.train.x_chosen, b.train.x_chosen) and torch.equal(a.test.x_rejected, b.test.x_rejected)
    assert len(a.val) == 32 and len(b.val) == 256
    assert not torch.equal(a.val.x_chosen, a.test.x_chosen[:32])  # a split of its own
    with pytest.raises(ValueError, match="n_val"):
        make_preference_data(16, 16, n_val=0)


def test_forward_with_is_the_module_forward_with_or_without_a_run_dimension():
    bb = make_preference_data(64, 16, seed=2).backbone
    x = torch.randn(10, bb.fc1.in_features, generator=torch.Generator().manual_seed(0))
    p = dict(bb.named_parameters())
    assert torch.allclose(MLPBackbone.forward_with(p, x), bb(x), rtol=0, atol=1e-6)
    stacked = {k: torch.stack([v, 2 * v]) for k, v in p.items()}
    out = MLPBackbone.forward_with(stacked, x.expand(2, -1, -1))
    assert out.shape == (2, 10, bb.hidden_size)
    assert torch.allclose(out[0], bb(x), rtol=0, atol=1e-6)
