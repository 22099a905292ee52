"""bradley_terry_loss, preference_accuracy and reward_margin: values, numerics at large |Δ|, bad inputs."""

import math

import pytest
import torch
import torch.nn.functional as F

from rmlib.losses import bradley_terry_loss, preference_accuracy, reward_margin
from rmlib.seeding import make_generator


def reference_loss(delta: torch.Tensor) -> torch.Tensor:
    """−log σ(Δ) = log(e⁰ + e^(−Δ)) via logaddexp, which is overflow-free and smooth at Δ = 0."""
    return torch.logaddexp(torch.zeros_like(delta), -delta).mean()


def test_loss_equals_negative_log_sigmoid_on_moderate_values():
    gen = make_generator(0)
    c, r = torch.randn(1000, generator=gen, dtype=torch.float64), torch.randn(1000, generator=gen, dtype=torch.float64)
    naive = -torch.log(torch.sigmoid(c - r)).mean()
    assert torch.allclose(bradley_terry_loss(c, r), naive, rtol=1e-12, atol=0)


def test_zero_difference_gives_log_two():
    x = torch.full((7,), 3.5)
    assert bradley_terry_loss(x, x).item() == pytest.approx(math.log(2), abs=1e-7)


@pytest.mark.parametrize("delta", [1e4, -1e4, 1e2, -1e2, 0.0, 30.0, -30.0])
def test_loss_is_finite_at_large_margins_and_gradient_matches_float64_autograd(delta):
    chosen = torch.tensor([delta, 0.5 * delta], dtype=torch.float32, requires_grad=True)
    rejected = torch.zeros(2, dtype=torch.float32)
    loss = bradley_terry_loss(chosen, rejected)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(chosen.grad).all()

    chosen64 = chosen.detach().double().requires_grad_(True)
    ref = reference_loss(chosen64 - rejected.double())
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6, abs=1e-7)
    # ∂L/∂r_c = −σ(−Δ)/n, bounded by 1/n whatever the size of Δ.
    assert torch.allclose(chosen.grad.double(), chosen64.grad, rtol=1e-6, atol=1e-12)
    assert chosen.grad.abs().max().item() <= 0.5 + 1e-7


def test_naive_formula_overflows_where_the_stable_one_does_not():
    delta = torch.tensor([-1e4])
    assert torch.isinf(-torch.log(torch.sigmoid(delta))).all()  # σ underflows to 0, log(0) = −inf
    assert torch.isinf(torch.log1p(torch.exp(-delta))).all()  # exp(1e4) overflows
    assert bradley_terry_loss(delta, torch.zeros(1)).item() == pytest.approx(1e4)


def test_margin_shifts_the_difference():
    gen = make_generator(1)
    c, r = torch.randn(50, generator=gen), torch.randn(50, generator=gen)
    assert torch.allclose(bradley_terry_loss(c, r, margin=0.7), bradley_terry_loss(c - 0.7, r))
    m = torch.rand(50, generator=gen)
    assert torch.allclose(bradley_terry_loss(c, r, margin=m), F.softplus(-(c - r - m)).mean())


def test_invariant_to_shared_shift_but_not_to_scale():
    gen = make_generator(2)
    c, r = torch.randn(100, generator=gen, dtype=torch.float64), torch.randn(100, generator=gen, dtype=torch.float64)
    shift = torch.randn(100, generator=gen, dtype=torch.float64) * 10  # a different shift per prompt
    assert torch.allclose(bradley_terry_loss(c + shift, r + shift), bradley_terry_loss(c, r), rtol=1e-12)
    assert not torch.allclose(bradley_terry_loss(3 * c, 3 * r), bradley_terry_loss(c, r), rtol=1e-3)


def test_reduction_none_gives_per_pair_losses():
    c, r = torch.tensor([[1.0, -2.0], [0.0, 5.0]]), torch.zeros(2, 2)
    per = bradley_terry_loss(c, r, reduction="none")
    assert per.shape == (2, 2)
    assert torch.allclose(per, F.softplus(-c))


def test_accuracy_counts_ties_as_half():
    c = torch.tensor([2.0, 1.0, 0.0, 3.0])
    r = torch.tensor([1.0, 1.0, 1.0, 3.0])
    assert preference_accuracy(c, r).item() == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    same = torch.zeros(10)
    assert preference_accuracy(same, same).item() == 0.5  # a zero head: chance, like its loss log 2


def test_accuracy_and_margin_along_a_dimension():
    c = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    r = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, -1.0]])
    assert torch.allclose(preference_accuracy(c, r, dim=1), torch.tensor([1.0, 1 / 3]))
    assert torch.allclose(reward_margin(c, r, dim=1), torch.tensor([2.0, -1 / 3]))
    assert reward_margin(c, r).item() == pytest.approx((6 - 1) / 6)


@pytest.mark.parametrize("fn", [bradley_terry_loss, preference_accuracy, reward_margin])
def test_bad_inputs_get_clear_errors(fn):
    with pytest.raises(ValueError, match="same shape"):
        fn(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn([1.0, 2.0], torch.zeros(2))
    with pytest.raises(ValueError, match="empty"):
        fn(torch.zeros(0), torch.zeros(0))


def test_bad_margin_and_reduction():
    x = torch.zeros(3)
    with pytest.raises(TypeError, match="margin"):
        bradley_terry_loss(x, x, margin="1")
    with pytest.raises(TypeError, match="margin"):
        bradley_terry_loss(x, x, margin=torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        bradley_terry_loss(x, x, reduction="sum")


# --- low precision: bf16 and fp16 ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_loss_is_finite_and_accurate_in_half_precision(dtype):
    """The stable form survives where the naive ones overflow: fp16's max is 65504 (exp overflows past
    Δ ≈ −11.09) and its smallest subnormal 2^-24 (σ(Δ) flushes to 0 past Δ ≈ −17.3)."""
    delta = torch.tensor([-6e4, -1e4, -200.0, -100.0, -20.0, -12.0, -1.0, 0.0, 1.0, 12.0])
    delta = delta.clamp(min=torch.finfo(dtype).min).to(dtype)
    loss = bradley_terry_loss(delta, torch.zeros_like(delta), reduction="none")
    assert loss.dtype == dtype and torch.isfinite(loss).all()
    exact = torch.logaddexp(torch.zeros(len(delta), dtype=torch.float64), -delta.double())
    # One rounding of the result: relative error ≤ eps (2^-10 fp16, 2^-7 bf16), plus the absolute
    # flush of values below the smallest subnormal (the loss at Δ = 12 is 6e-6, fp16 holds it; bf16 too).
    assert torch.allclose(loss.double(), exact, rtol=torch.finfo(dtype).eps, atol=1e-7)
    naive = -torch.log(torch.sigmoid(delta))
    if dtype == torch.float16:
        assert torch.isinf(naive[:5]).all()  # Δ ≤ −20: σ(Δ) = 0 in fp16
        assert torch.isinf(torch.log(1 + torch.exp(-delta))[:6]).all()  # Δ ≤ −12: exp overflows 65504
