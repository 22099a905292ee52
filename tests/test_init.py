"""layer_init, score_head_std, init_score_head and the initialiser catalogue."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from rmlib import INITIALISERS, TinyRewardModel, get_initialiser, init_score_head, layer_init, score_head_std
from rmlib.init import fan_in
from rmlib.seeding import make_generator
from rmlib.theory import excess_kurtosis

N = 200_000  # weights drawn in the statistical tests


def test_layer_init_draws_normal_with_requested_std():
    layer = nn.Linear(N, 1)
    layer_init(layer, 0.5, generator=make_generator(1))
    w = layer.weight.detach().flatten()
    # Sampling errors for n = 2e5 normal draws: mean σ/sqrt(n) = 1.1e-3, std σ/sqrt(2n) = 7.9e-4,
    # excess kurtosis sqrt(24/n) = 1.1e-2. Tolerances are 5 standard errors; a uniform law has
    # excess kurtosis -1.2, far outside.
    assert abs(w.mean().item()) < 5 * 0.5 / math.sqrt(N)
    assert abs(w.std().item() - 0.5) < 5 * 0.5 / math.sqrt(2 * N)
    assert abs(excess_kurtosis(w)) < 5 * math.sqrt(24 / N)


def test_layer_init_is_in_place_returns_same_layer_and_keeps_bias():
    layer = nn.Linear(64, 3)
    weight, bias = layer.weight, layer.bias
    weight_ptr, bias_before = weight.data_ptr(), bias.detach().clone()
    out = layer_init(layer, 0.1, generator=make_generator(0))
    assert out is layer
    assert layer.weight is weight and layer.weight.data_ptr() == weight_ptr
    assert layer.bias is bias and torch.equal(layer.bias, bias_before)
    assert layer.weight.requires_grad


@pytest.mark.parametrize(
    "layer",
    [nn.Linear(32, 1, bias=False), nn.Conv2d(3, 8, 3), nn.Embedding(50, 16), nn.Conv1d(4, 4, 5)],
    ids=["linear-no-bias", "conv2d", "embedding", "conv1d"],
)
def test_layer_init_works_for_any_module_with_a_weight(layer):
    layer_init(layer, 0.0)
    assert torch.count_nonzero(layer.weight) == 0
    layer_init(layer, 0.2, generator=make_generator(3))
    assert torch.count_nonzero(layer.weight) == layer.weight.numel()


def test_layer_init_is_reproducible_with_a_generator():
    a, b = nn.Linear(16, 1), nn.Linear(16, 1)
    layer_init(a, 0.3, generator=make_generator(7))
    layer_init(b, 0.3, generator=make_generator(7))
    assert torch.equal(a.weight, b.weight)


@pytest.mark.parametrize("module", [nn.ReLU(), nn.Sequential(), object(), "score"])
def test_layer_init_rejects_a_module_without_weight(module):
    with pytest.raises(TypeError, match=type(module).__name__):
        layer_init(module, 0.1)


@pytest.mark.parametrize("std", [-0.1, float("nan"), float("inf"), -float("inf")])
def test_layer_init_rejects_bad_std_values(std):
    with pytest.raises(ValueError, match="std"):
        layer_init(nn.Linear(4, 1), std)


@pytest.mark.parametrize("std", ["0.1", None, True, torch.tensor([0.1, 0.2])])
def test_layer_init_rejects_non_numeric_std(std):
    with pytest.raises(TypeError, match="std"):
        layer_init(nn.Linear(4, 1), std)


@pytest.mark.parametrize("d", [1, 64, 768, 4096])
def test_score_head_std_values(d):
    assert score_head_std(d) == pytest.approx(1 / math.sqrt(d + 1), rel=1e-15)


def test_score_head_std_at_4096_is_about_0_0156():
    assert score_head_std(4096) == pytest.approx(0.015623, abs=1e-6)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-5, ValueError), (64.0, TypeError), (True, TypeError), ("64", TypeError)])
def test_score_head_std_rejects_bad_sizes(bad, exc):
    with pytest.raises(exc, match="hidden_size"):
        score_head_std(bad)


def test_init_score_head_on_a_large_head_has_the_right_std():
    d = 100_000
    model = SimpleNamespace(score=nn.Linear(d, 1, bias=False), config=SimpleNamespace(hidden_size=d))
    out = init_score_head(model, generator=make_generator(2))
    assert out is model.score
    sigma = 1 / math.sqrt(d + 1)
    # std of the sample std for n normal draws: σ/sqrt(2n); 5 of those.
    assert abs(model.score.weight.std().item() - sigma) < 5 * sigma / math.sqrt(2 * d)


def test_init_score_head_on_the_tiny_model_touches_only_the_head():
    model = TinyRewardModel(seed=0)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    init_score_head(model, generator=make_generator(0))
    assert all(torch.equal(v, before[k]) for k, v in model.backbone.state_dict().items())
    expected = nn.Linear(64, 1, bias=False)
    layer_init(expected, 1 / math.sqrt(65), generator=make_generator(0))
    assert torch.equal(model.score.weight, expected.weight)


def test_init_score_head_errors_name_what_is_missing():
    with pytest.raises(AttributeError, match="score"):
        init_score_head(SimpleNamespace(config=SimpleNamespace(hidden_size=8)))
    with pytest.raises(AttributeError, match="hidden_size"):
        init_score_head(SimpleNamespace(score=nn.Linear(8, 1), config=SimpleNamespace()))
    with pytest.raises(AttributeError, match="hidden_size"):
        init_score_head(SimpleNamespace(score=nn.Linear(8, 1)))


def test_catalogue_has_the_seven_initialisers_with_their_formulas():
    d = 4096
    expected = {
        "zero": 0.0,
        "pytorch_default": 1 / math.sqrt(3 * d),
        "hf_default": 0.02,
        "score_head": 1 / math.sqrt(d + 1),
        "variance_as_std": 1 / (d + 1),
        "xavier_normal": math.sqrt(2 / (d + 1)),
        "large": 1.0,
    }
    assert set(INITIALISERS) == set(expected)
    for name, std in expected.items():
        assert INITIALISERS[name].std(d) == pytest.approx(std, rel=1e-12), name
    # The variance-read-as-std trap is sqrt(d+1) = 64x smaller at d = 4096.
    assert INITIALISERS["score_head"].std(d) / INITIALISERS["variance_as_std"].std(d) == pytest.approx(64.0078, rel=1e-4)


def test_catalogue_pytorch_default_matches_nn_linear_default_init():
    d, rows = 4096, 64
    torch.manual_seed(0)
    default = nn.Linear(d, rows).weight.detach().flatten()
    ours = get_initialiser("pytorch_default").apply(nn.Linear(d, rows), generator=make_generator(0)).weight.detach().flatten()
    n, sigma = default.numel(), 1 / math.sqrt(3 * d)
    for w in (default, ours):
        # For a uniform law μ₄ = 1.8σ⁴, so the sample std has se σ·sqrt(0.8/(4n)) (4.4e-6 here);
        # tolerance 5 se. Its excess kurtosis is -1.2 (a normal's is 0); se < 0.01 at this n.
        assert abs(w.std().item() - sigma) < 5 * sigma * math.sqrt(0.8 / (4 * n))
        assert abs(excess_kurtosis(w) + 1.2) < 0.05
        assert w.abs().max().item() <= 1 / math.sqrt(d)


def test_catalogue_apply_leaves_bias_and_uses_fan_in():
    layer = nn.Linear(256, 1)
    bias = layer.bias.detach().clone()
    get_initialiser("score_head").apply(layer, generator=make_generator(0))
    assert torch.equal(layer.bias, bias)
    assert fan_in(layer) == 256
    assert get_initialiser("zero").apply(layer).weight.abs().sum() == 0


def test_unknown_initialiser_lists_the_valid_names():
    with pytest.raises(KeyError, match="score_head"):
        get_initialiser("kaiming")


@pytest.mark.parametrize("d, error", [(0, ValueError), (-1, ValueError), (2.5, TypeError)])
def test_initialiser_std_rejects_bad_fan_in(d, error):
    with pytest.raises(error, match="fan-in"):
        INITIALISERS["score_head"].std(d)


@pytest.mark.parametrize("name", ["score_head", "pytorch_default", "zero"])
def test_catalogue_sample_is_apply_on_a_linear_with_one_row_per_head(name):
    init = get_initialiser(name)
    w = init.sample(5, 96, generator=make_generator(4))
    layer = init.apply(nn.Linear(96, 5), generator=make_generator(4))
    assert w.shape == (5, 96)
    assert torch.equal(w, layer.weight.detach())


def test_catalogue_sample_has_the_catalogued_std():
    n_heads, d = 100, 2000
    w = get_initialiser("xavier_normal").sample(n_heads, d, generator=make_generator(5))
    sigma = math.sqrt(2 / (d + 1))
    # sample std of n = 2e5 normal draws: se σ/sqrt(2n); 5 se.
    assert abs(w.std().item() - sigma) < 5 * sigma / math.sqrt(2 * n_heads * d)


@pytest.mark.parametrize("n_heads, error", [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError)])
def test_catalogue_sample_rejects_bad_head_counts(n_heads, error):
    with pytest.raises(error, match="n_heads"):
        get_initialiser("score_head").sample(n_heads, 8)
