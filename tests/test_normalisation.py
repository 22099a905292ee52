"""Tests of rmlib.normalisation: OpenAI-style gain/bias normalisation and TRL-style reward centring."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import rmlib
from rmlib.normalisation import RewardNormalizer, centred_bt_loss, centring_penalty, normalize_rewards


def _rewards(n: int = 1000, scale: float = 7.0, shift: float = -3.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=rmlib.make_generator(seed), dtype=torch.float64) * scale + shift


def test_fit_gives_reference_mean_zero_std_one():
    ref = _rewards()
    out = RewardNormalizer.fit(ref)(ref)
    assert out.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert out.std(correction=0).item() == pytest.approx(1.0, rel=1e-12)


def test_fit_matches_closed_form_and_targets():
    ref = _rewards()
    norm = RewardNormalizer.fit(ref, target_mean=2.0, target_std=0.5)
    mean, std = ref.mean().item(), ref.std(correction=0).item()
    assert norm.gain == pytest.approx(0.5 / std, rel=1e-12)
    assert norm.bias == pytest.approx(2.0 - 0.5 / std * mean, rel=1e-12)
    out = norm(ref)
    assert out.mean().item() == pytest.approx(2.0, rel=1e-12)
    assert out.std(correction=0).item() == pytest.approx(0.5, rel=1e-12)


def test_normalisation_is_affine_and_order_preserving():
    ref, other = _rewards(seed=1), _rewards(n=50, seed=2)
    out = normalize_rewards(other, ref)
    norm = RewardNormalizer.fit(ref)
    assert torch.allclose(out, norm.gain * other + norm.bias)
    assert torch.equal(torch.argsort(out), torch.argsort(other))  # gain > 0: rankings unchanged
    assert norm.gain > 0


def test_undoes_any_scale_and_shift():
    """Two reward models that differ by a positive affine map normalise to the same rewards."""
    base = _rewards(seed=3)
    a = normalize_rewards(base, base)
    b = normalize_rewards(40.0 * base + 17.0, 40.0 * base + 17.0)
    assert torch.allclose(a, b, atol=1e-9)


def test_works_on_any_shape_and_float32():
    ref = _rewards(seed=4).float().reshape(10, 100)
    out = normalize_rewards(ref, ref)
    assert out.shape == (10, 100) and out.dtype == torch.float32
    assert out.std(correction=0).item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("ref", [torch.full((10,), 3.0), torch.full((10,), 1e6), torch.zeros(5)])
def test_zero_variance_reference_is_a_clear_error(ref):
    with pytest.raises(ValueError, match="zero variance"):
        RewardNormalizer.fit(ref)


def test_near_zero_variance_from_rounding_is_rejected():
    ref = torch.full((10,), 0.1, dtype=torch.float64) + torch.tensor([0.0, 1e-17] * 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="zero variance"):
        RewardNormalizer.fit(ref)


@pytest.mark.parametrize("bad, error, match", [
    ([1.0, 2.0], TypeError, "torch.Tensor"),
    (torch.tensor([1, 2, 3]), TypeError, "floating-point"),
    (torch.tensor([1.0, float("nan"), 2.0]), ValueError, "non-finite"),
    (torch.tensor([1.0, float("inf")]), ValueError, "non-finite"),
    (torch.tensor([1.0]), ValueError, "at least 2"),
])
def test_fit_rejects_bad_reference(bad, error, match):
    with pytest.raises(error, match=match):
        RewardNormalizer.fit(bad)


@pytest.mark.parametrize("kwargs, error", [({"target_std": 0.0}, ValueError), ({"target_std": -1.0}, ValueError),
                                           ({"target_std": math.inf}, ValueError), ({"target_mean": math.nan}, ValueError),
                                           ({"target_mean": "0"}, TypeError)])
def test_fit_rejects_bad_targets(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        RewardNormalizer.fit(_rewards(), **kwargs)


def test_call_rejects_non_finite_rewards():
    norm = RewardNormalizer.fit(_rewards())
    with pytest.raises(ValueError, match="non-finite"):
        norm(torch.tensor([0.0, float("nan")]))


# --- reward centring ------------------------------------------------------------------------------

def test_centring_penalty_value_and_zero_case():
    rc = torch.tensor([1.0, 2.0, -0.5])
    rr = torch.tensor([0.0, -2.0, -0.5])
    assert centring_penalty(rc, rr).item() == pytest.approx((1 + 0 + 1) / 3)
    assert centring_penalty(rc, -rc).item() == 0.0


def test_centred_loss_is_bt_plus_penalty_and_shift_sensitive():
    gen = rmlib.make_generator(5)
    rc, rr = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    bt = -F.logsigmoid(rc - rr).mean()
    assert torch.allclose(centred_bt_loss(rc, rr, coefficient=0.0), bt)
    assert torch.allclose(centred_bt_loss(rc, rr, 0.01), bt + 0.01 * ((rc + rr) ** 2).mean())
    # Plain BT is blind to a shared shift; the centred loss is not, and grows with it.
    assert torch.allclose(centred_bt_loss(rc + 5, rr + 5, 0.0), bt)
    assert centred_bt_loss(rc + 5, rr + 5, 0.01) > centred_bt_loss(rc, rr, 0.01) + 0.9  # 0.01·(10+…)² ≥ ~1


def test_centring_gradient_pulls_shared_offset_to_zero():
    """On a shared offset b the penalty has gradient 4c·mean(r_c + r_r + 2b): it points back to zero."""
    gen = rmlib.make_generator(6)
    rc, rr = torch.randn(128, generator=gen), torch.randn(128, generator=gen)
    b = torch.tensor(3.0, requires_grad=True)
    centred_bt_loss(rc + b, rr + b, 0.01).backward()
    expected = 0.01 * 2 * ((rc + rr + 6.0) * 2).mean()  # d/db mean((rc+rr+2b)²) = mean(2(rc+rr+2b)·2)
    assert b.grad.item() == pytest.approx(expected.item(), rel=1e-5)
    assert b.grad.item() > 0


@pytest.mark.parametrize("coefficient, error", [(-0.1, ValueError), (math.nan, ValueError), (None, TypeError)])
def test_centred_loss_rejects_bad_coefficient(coefficient, error):
    with pytest.raises(error, match="coefficient"):
        centred_bt_loss(torch.zeros(3), torch.zeros(3), coefficient)


def test_centring_rejects_shape_mismatch_and_bad_types():
    with pytest.raises(ValueError, match="r_chosen and r_rejected must have the same shape"):
        centring_penalty(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError, match="floating-point"):
        centring_penalty(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))


# --- the worksheet checker: accepts the reference answer, rejects typical wrong ones with a hint -------

from rmlib import checks  # noqa: E402


def _right(ref):
    ref = ref.detach().double().flatten()
    if ref.numel() < 2 or not torch.isfinite(ref).all():
        raise ValueError("bad reference")
    mean, std = ref.mean(), ref.std(correction=0)
    if std <= 1e-6 * max(1.0, abs(mean.item())):
        raise ValueError("zero variance")
    return (1 / std).item(), (-mean / std).item()


def _via_library(ref):
    norm = RewardNormalizer.fit(ref)
    return norm.gain, norm.bias


def test_checker_accepts_the_right_answer(capsys):
    assert checks.check_reward_gain_bias(_right) is True
    assert "✓ reward_gain_bias" in capsys.readouterr().out


def test_checker_rejects_the_librarys_own_implementation():
    with pytest.raises(AssertionError, match="calls rmlib's own RewardNormalizer; write it yourself"):
        checks.check_reward_gain_bias(_via_library)


def test_checker_stub_is_not_implemented(capsys):
    def stub(ref):
        raise NotImplementedError

    assert checks.check_reward_gain_bias(stub) is False
    assert "not implemented yet" in capsys.readouterr().out


def _wrong(kind):
    def answer(ref):
        r = ref.double().flatten()
        mean, std = r.mean(), r.std(correction=0)
        if kind == "no guard":
            return (1 / std).item(), (-mean / std).item()
        if kind == "exact zero guard":  # in the input's own dtype, as naive code does
            native = ref.flatten()
            if native.std(correction=0) == 0 or not torch.isfinite(native).all():
                raise ValueError("zero")
            return (1 / native.std(correction=0)).item(), (-native.mean() / native.std(correction=0)).item()
        if kind == "zero division":
            if std.item() < 1e-6:
                return 1 / 0
            return (1 / std).item(), (-mean / std).item()
        if kind == "nan passes":
            if std <= 1e-6 * max(1.0, abs(mean.item())):
                raise ValueError("zero")
            return (1 / std).item(), (-mean / std).item()
        _right(ref)  # the remaining wrong answers get the guards right
        return {
            "multiply": lambda: (std.item(), (-mean * std).item()),
            "variance": lambda: ((1 / std**2).item(), (-mean / std**2).item()),
            "sample std": lambda: ((1 / r.std()).item(), (-mean / r.std()).item()),
            "bias unscaled": lambda: ((1 / std).item(), (-mean).item()),
            "bias sign": lambda: ((1 / std).item(), (mean / std).item()),
            "swapped": lambda: ((-mean / std).item(), (1 / std).item()),
            "returns rewards": lambda: (r - mean) / std,
            "per column": lambda: (1 / ref.std(0, correction=0), -ref.mean(0) / ref.std(0, correction=0)),
            "in place": lambda: (ref.sub_(mean), (1 / std).item(), 0.0)[1:],
            "threshold too big": lambda: (_ for _ in ()).throw(ValueError("zero")) if std < 0.01 else
            ((1 / std).item(), (-mean / std).item()),
        }[kind]()

    return answer


@pytest.mark.parametrize("kind, hint", [
    ("multiply", "multiplied by the std"),
    ("variance", "divided by the variance"),
    ("sample std", "correction=0"),
    ("bias unscaled", r"bias must be −gain·mean"),
    ("bias sign", "wrong sign of the bias"),
    ("swapped", r"returned \(bias, gain\)"),
    ("returns rewards", "not the normalised rewards"),
    ("per column", "one gain and one bias"),
    ("in place", "in place"),
    ("threshold too big", "threshold is too large"),
    ("no guard", "instead of raising ValueError"),
    ("exact zero guard", "in float64"),  # it also computes in the input's float32: the first evidence the checker finds
    ("zero division", "raised ZeroDivisionError"),
    ("nan passes", "isfinite"),
])
def test_checker_rejects_wrong_answers_with_hint(kind, hint):
    with pytest.raises(AssertionError, match=hint):
        checks.check_reward_gain_bias(_wrong(kind))


def test_checker_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.check_reward_gain_bias(_right)
    assert torch.equal(torch.rand(3), expected)


def _normalise_right(rewards, samples):
    gain, bias = _right(rewards.gather(1, samples))
    return gain * rewards + bias


def _normalise_wrong(kind):
    def answer(rewards, samples):
        ref = rewards.gather(1, samples)
        return {
            "all responses": lambda: (rewards - rewards.mean()) / rewards.std(correction=0),
            "per prompt": lambda: (rewards - ref.mean(1, keepdim=True)) / ref.std(1, keepdim=True, correction=0),
            "sample std": lambda: (rewards - ref.mean()) / ref.std(),
            "only samples": lambda: (ref - ref.mean()) / ref.std(correction=0),
            "in place": lambda: rewards.sub_(ref.mean()).div_(ref.std(correction=0)),
            "unscaled": lambda: rewards - ref.mean(),
            "not a tensor": lambda: ((rewards - ref.mean()) / ref.std(correction=0)).tolist(),
        }[kind]()

    return answer


def test_a_per_prompt_answer_is_named_when_a_prompt_samples_one_response_only():
    # Probe seed 19898973 draws a prompt whose reference samples are all one response: the per-prompt
    # answer gives nan there, and the hint must still name the mistake (it said "mean nan" before).
    with pytest.raises(AssertionError, match="each prompt separately"):
        checks.check_normalise_on_reference(_normalise_wrong("per prompt"), seed=19898973)


def test_normalise_checker_accepts_right_answer(capsys):
    assert checks.check_normalise_on_reference(_normalise_right) is True
    assert "✓ normalise_on_reference" in capsys.readouterr().out


@pytest.mark.parametrize("kind, hint", [
    ("all responses", "fitted on all responses"),
    ("per prompt", "each prompt separately"),
    ("sample std", "correction=0"),
    ("only samples", "normalise every response"),
    ("in place", "in place"),
    ("unscaled", "mean 0 and std 1"),
    ("not a tensor", "as a tensor"),
])
def test_normalise_checker_rejects_wrong_answers(kind, hint):
    with pytest.raises(AssertionError, match=hint):
        checks.check_normalise_on_reference(_normalise_wrong(kind))


def test_centred_loss_uses_the_one_bradley_terry_loss(monkeypatch):
    """Issue 11: the Bradley-Terry loss exists once, in rmlib.losses; centring adds to it."""
    import rmlib.normalisation as normalize

    calls = []

    def spy(chosen, rejected, *args, **kwargs):
        calls.append((chosen, rejected))
        return rmlib.bradley_terry_loss(chosen, rejected, *args, **kwargs)

    monkeypatch.setattr(normalize, "bradley_terry_loss", spy)
    rc, rr = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    normalize.centred_bt_loss(rc, rr, 0.01)
    assert len(calls) == 1 and calls[0][0] is rc and calls[0][1] is rr


# normalize_before and Adam on normalised heads (lesson 06, section 8)

from rmlib.normalisation import NormalisedHeads, normalize_before, train_normalised_heads  # noqa: E402


def _states(n: int, d: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, d, generator=rmlib.make_generator(seed)) + 0.5


def test_normalize_before_gives_mean_zero_std_one_and_drops_the_scale():
    ref, u = _states(256), _states(1, seed=2)[0]
    heads = normalize_before(torch.stack([0.02 * u, u, 10.0 * u]), ref)
    on_ref = heads.rewards(ref).double()
    assert torch.allclose(on_ref.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(on_ref.std(1, correction=0), torch.ones(3, dtype=torch.float64), atol=1e-5)
    other = heads.rewards(_states(50, seed=3))
    # float32 rewards of size ~1: the three scales agree to a few ulps
    assert torch.allclose(other[0], other[1], atol=1e-5) and torch.allclose(other[0], other[2], atol=1e-5)


def test_normalize_before_refuses_a_zero_head_and_bad_input():
    ref = _states(64)
    with pytest.raises(ValueError, match="zero variance"):
        normalize_before(torch.zeros(2, 16), ref)
    with pytest.raises(ValueError, match="features"):
        normalize_before(torch.ones(2, 8), ref)
    with pytest.raises(ValueError, match="2-D"):
        normalize_before(torch.ones(16), ref)
    with pytest.raises(TypeError, match="torch.Tensor"):
        normalize_before([[1.0] * 16], ref)


def test_normalize_before_floor_refuses_tiny_nonzero_heads_and_mixed_dtypes():
    ref, u = _states(64), _states(1, seed=2)[0]
    # fit's floor is absolute (1e-6) when |mean| < 1: a nonzero head with reward std ~1e-30 is refused
    # although its rewards have a spread; the same direction at std ~1 is fine
    with pytest.raises(ValueError, match="zero variance"):
        normalize_before(1e-30 * u[None] / u.norm(), ref)
    assert normalize_before(u[None] / u.norm(), ref).gain.shape == (1,)
    with pytest.raises(TypeError, match="same dtype.*float32.*float64"):
        normalize_before(u[None], ref.double())
    start = normalize_before(u[None], ref)
    with pytest.raises(TypeError, match="same dtype"):
        train_normalised_heads(start, _states(10).double(), _states(10).double(), steps=1)


def test_training_stacked_heads_equals_training_each_alone():
    ref, h_c, h_r = _states(128), _states(200, seed=4), _states(200, seed=5)
    start = normalize_before(_states(3, seed=6), ref)
    together = train_normalised_heads(start, h_c, h_r, lr=1e-2, steps=30)
    for k in range(3):
        alone = train_normalised_heads(NormalisedHeads(start.weight[k:k + 1], start.gain[k:k + 1], start.bias[k:k + 1]),
                                       h_c, h_r, lr=1e-2, steps=30)
        # same arithmetic per coordinate; only the matmul's summation order may differ (float32 ulps)
        assert torch.allclose(alone.weight[0], together.weight[k], atol=1e-5)
        assert torch.allclose(alone.gain[0], together.gain[k], rtol=1e-5)
    assert torch.equal(together.bias, start.bias)  # Bradley-Terry gives the bias zero gradient
    assert not torch.equal(together.weight, start.weight) and start.weight.grad is None  # input left alone


def test_under_adam_a_large_raw_head_barely_turns():
    ref, h_c, h_r = _states(128), _states(400, seed=4), _states(400, seed=5)
    h_c = h_c + torch.linspace(0, 1, 16)  # chosen answers differ along a fixed direction: something to learn
    u = _states(1, seed=7)[0]
    start = normalize_before(torch.stack([0.02 * u / u.norm(), 10.0 * u / u.norm()]), ref)
    end = train_normalised_heads(start, h_c, h_r, lr=1e-3, steps=100)
    cos = F.cosine_similarity(end.weight, start.weight, dim=1)
    # Adam moves a coordinate by about lr per step: 100 steps turn a std-10 head by ~1e-2 at most
    assert cos[1] > 0.999 and cos[0] < 0.9, cos


@pytest.mark.parametrize("kwargs, error", [({"lr": 0.0}, ValueError), ({"steps": 0}, ValueError),
                                           ({"steps": 1.5}, TypeError)])
def test_train_normalised_heads_rejects_bad_arguments(kwargs, error):
    start = normalize_before(_states(2, seed=6), _states(64))
    with pytest.raises(error):
        train_normalised_heads(start, _states(10), _states(10), **kwargs)
    with pytest.raises(ValueError, match="same shape"):
        train_normalised_heads(start, _states(10), _states(9))


def test_the_old_spellings_are_the_same_objects():
    """``rmlib.normalize`` and ``centering_penalty`` stay importable: code written against them keeps working."""
    import rmlib.normalisation as normalisation
    import rmlib.normalize as old

    for name in old.__all__:
        assert getattr(old, name) is getattr(normalisation, name), name
    assert old.centering_penalty is normalisation.centring_penalty is rmlib.centering_penalty is rmlib.centring_penalty
