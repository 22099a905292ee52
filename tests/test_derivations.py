"""The derivation checkers (rmlib.checks.derivations) pass the right answer and reject every wrong one we could invent."""

import decimal
import fractions
import math

import numpy as np
import pytest
import torch

from rmlib.checks import check_default_head_reward_std, check_difference_std, check_std_for_unit_variance, hint

RIGHT_STD = lambda d, s: 1 / math.sqrt(d * s**2 + 1)
RIGHT_DEFAULT = lambda d, n: math.sqrt((n**2 + 1) / (3 * d))
RIGHT_DIFF = lambda d, p: math.sqrt(2 * d * (1 - p) / (d + 1))


def test_right_answers_pass_in_float_and_tensor_form():
    assert check_std_for_unit_variance(RIGHT_STD)
    assert check_std_for_unit_variance(lambda d, s: torch.tensor(d * s**2 + 1.0).rsqrt())  # float32 one-element
    assert check_default_head_reward_std(RIGHT_DEFAULT)
    assert check_difference_std(RIGHT_DIFF)
    assert check_difference_std(lambda d, p: torch.tensor(2.0 * d * (1 - p) / (d + 1)).sqrt())  # float32 tensor


def test_difference_std_accepts_rho_rounded_to_float32_on_every_seed():
    def in_float32(d, rho):  # 1 − rho in float32 loses digits near rho = 1: rejected on 5 seeds of 60 before
        d, rho = torch.tensor(d, dtype=torch.float32), torch.tensor(rho, dtype=torch.float32)
        return torch.sqrt(2 * d * (1 - rho) / (d + 1))

    for seed in range(60):
        assert check_difference_std(in_float32, seed=seed)
    assert check_difference_std(lambda d, p: np.sqrt(2 * (1 - p)) * np.sqrt(d / (d + 1)))       # numpy, factored
    assert check_difference_std(lambda d, p: decimal.Decimal(RIGHT_DIFF(d, p)))                 # exact types are numbers
    assert check_difference_std(lambda d, p: fractions.Fraction(RIGHT_DIFF(d, p)))
    assert check_std_for_unit_variance(lambda d, s: decimal.Decimal(d * s**2 + 1).sqrt() ** -1)


@pytest.mark.parametrize("wrong, says", [
    (lambda d, s: 1 / math.sqrt(d + 1), "only for sigma_h = 1"),                 # ignores sigma_h
    (lambda d, s: 1 / (s * math.sqrt(d + 1)), "constant 1"),
    (lambda d, s: 1 / (s * math.sqrt(d)), "leaves the bias out"),
    (lambda d, s: 1 / math.sqrt(d), "ignores both"),
    (lambda d, s: 1 / (d * s**2 + 1), "VARIANCE"),
    (lambda d, s: math.sqrt(d * s**2 + 1), "upside down"),
    (lambda d, s: 1 / math.sqrt(d * s + 1), "squared"),
    (lambda d, s: 2 / math.sqrt(d * s**2 + 1), "not what the derivation gives"),  # off by a constant factor
    (lambda d, s: 1 / math.sqrt(d * s**2 + 2), "not what the derivation gives"),
    (lambda d, s: 0.5, "use both"),                                                # hard-coded
    (lambda d, s: None, "return"),
    (lambda d, s: torch.ones(2), "one number"),
    (lambda d, s: "0.1", "number"),
])
def test_wrong_unit_variance_answers_fail(wrong, says):
    with pytest.raises(AssertionError, match=says):
        check_std_for_unit_variance(wrong)


@pytest.mark.parametrize("wrong, says", [
    (lambda d, n: math.sqrt((n**2 + 1) / d), "sqrt\\(3\\)"),
    (lambda d, n: n / math.sqrt(3 * d), "left out the bias"),
    (lambda d, n: n / math.sqrt(d), "1/sqrt\\(d\\) per weight"),                 # 1/sqrt(d) instead of 1/sqrt(3d)
    (lambda d, n: (n**2 + 1) / (3 * d), "VARIANCE"),
    (lambda d, n: math.sqrt((n + 1) / (3 * d)), "squared"),
    (lambda d, n: math.sqrt(1 / 3), "assumed"),                                     # ignores both parameters
    (lambda d, n: math.sqrt((n**2 + 1) / (12 * d)), "width 2a"),
    (lambda d, n: math.sqrt((n**2 + 1) / (3 * (d + 1))), "fan-in"),
    (lambda d, n: 1.01 * math.sqrt((n**2 + 1) / (3 * d)), "not what the derivation gives"),
    (lambda d, n: math.sqrt((n**2 + 1) / 3), "not what the derivation gives|both"),  # ignores d
])
def test_wrong_default_head_answers_fail(wrong, says):
    with pytest.raises(AssertionError, match=says):
        check_default_head_reward_std(wrong)


def test_a_memorised_table_cannot_pass():
    # Answers right at the widths a learner might guess the checker uses, wrong elsewhere.
    table = {(1, 1.0): RIGHT_STD(1, 1.0), (3, 0.5): RIGHT_STD(3, 0.5)}
    with pytest.raises(AssertionError):
        check_std_for_unit_variance(lambda d, s: table.get((d, s), 0.1))


def test_probes_are_fresh_on_every_call(monkeypatch):
    monkeypatch.delenv("RMLIB_CHECK_SEED", raising=False)  # it would fix every call's probe seed
    seen = []
    check_std_for_unit_variance(lambda d, s: (seen.append((d, s)), RIGHT_STD(d, s))[1])
    first = list(seen)
    seen.clear()
    check_std_for_unit_variance(lambda d, s: (seen.append((d, s)), RIGHT_STD(d, s))[1])
    assert first[2:] != seen[2:]


@pytest.mark.parametrize("checker, right", [(check_std_for_unit_variance, RIGHT_STD),
                                            (check_default_head_reward_std, RIGHT_DEFAULT)],
                         ids=["std_for_unit_variance", "default_head_reward_std"])
def test_probes_come_from_the_recorded_seed_and_replay(checker, right):
    from rmlib.checks import RECORDS, TASKS

    seen = []
    spy = lambda d, x: (seen.append((d, x)), right(d, x))[1]  # noqa: E731
    assert checker(spy)
    task = next(t.name for t in TASKS.values() if t.checker == checker.__name__)
    seed, first = RECORDS[task]["seed"], list(seen)
    seen.clear()
    assert checker(spy, seed=seed) and seen == first  # the same probes, from the seed in the record
    seen.clear()
    assert checker(spy, seed=seed + 1) and seen[2:] != first[2:]


def test_a_failure_says_how_to_replay_its_probes():
    with pytest.raises(AssertionError, match=r"probe seed \d+: check_std_for_unit_variance\(std_for_unit_variance, "
                                             r"seed=\d+\) replays"):
        check_std_for_unit_variance(lambda d, s: 2 / math.sqrt(d * s**2 + 1))


def mc_difference_std(d, p):
    """Gaming: simulate instead of deriving: one coordinate's Var(h_w,k − h_l,k) by sampling, times d sigma_w²."""
    g = torch.Generator().manual_seed(0)
    shared, own_w, own_l = torch.randn(3, 100_000, generator=g, dtype=torch.float64)
    diff = (math.sqrt(p) * shared + math.sqrt(1 - p) * own_w) - (math.sqrt(p) * shared + math.sqrt(1 - p) * own_l)
    return math.sqrt(d / (d + 1) * diff.var().item())


@pytest.mark.parametrize("wrong, says", [
    # careless
    (lambda d, p: math.sqrt(2 * d / (d + 1)), "independent answers"),               # lesson 02's rho = 0 answer
    (lambda d, p: 2 * d * (1 - p) / (d + 1), "VARIANCE of Δ"),
    (lambda d, p: math.sqrt(d * (1 - p) / (d + 1)), "factor 2"),
    (lambda d, p: math.sqrt(2 * (1 - p)), "not 1 at small d"),
    # the bias drawn like the weights and counted as one more coordinate correlated with rho, so
    # Var(Δ) = sigma_w² · 2(d + 1)(1 − rho): the hint must say that the shared bias cancels
    (lambda d, p: math.sqrt(2 * (d + 1) * (1 - p) / (d + 1)), "bias is the same number in both rewards"),
    # Var(r) = 1 (bias included) and corr(r⁺, r⁻) = rho: Var(Δ) = 1 + 1 − 2 rho
    (lambda d, p: math.sqrt(1 + 1 - 2 * p), "cancels in Δ"),
    (lambda d, p: 1.01 * RIGHT_DIFF(d, p), "not what the derivation gives"),
    # confused
    (lambda d, p: math.sqrt(2 * d * (1 + p) / (d + 1)), "sign"),
    (lambda d, p: math.sqrt(2 * d * (1 - p**2) / (d + 1)), "regressing"),
    (lambda d, p: math.sqrt(2 * d * (1 - p)) / (d + 1), "weights' VARIANCE"),
    (lambda d, p: math.sqrt(2 * d / (d + 1)) * (1 - p), "by sqrt\\(1 − rho\\)"),
    (lambda d, p: math.sqrt((2 * d * (1 - p) + 1) / (d + 1)), "cancels"),
    (lambda d, p: math.sqrt((2 * d * (1 - p) + 2) / (d + 1)), "not two independent draws"),
    (lambda d, p: math.sqrt(2 * d * (1 - p) / d), "not 1 at small d"),
    # gaming
    (mc_difference_std, "not what the derivation gives"),                           # simulated, not derived
    (lambda d, p: 1.0, "use both"),                                                 # a constant
    (lambda d, p: {(1, 0.0): 1.0, (3, 0.5): RIGHT_DIFF(3, 0.5)}.get((d, p), 0.5), "not what the derivation gives|both"),
    (lambda d, p: None, "return"),
    (lambda d, p: torch.ones(2), "one number"),
    # numerically broken
    (lambda d, p: torch.tensor(2.0 * d * (p - 1) / (d + 1)).sqrt(), "square root of a negative"),  # NaN
    (lambda d, p: torch.tensor(2.0 * d * (1 - p)).sqrt() / torch.tensor(float(d - 1)), "division by zero"),  # inf at d = 1
    (lambda d, p: -RIGHT_DIFF(d, p), "never negative"),
    (lambda d, p: torch.tensor(RIGHT_DIFF(d, p), dtype=torch.float16), "16-bit"),
    (lambda d, p: torch.tensor(RIGHT_DIFF(d, p), dtype=torch.bfloat16), "16-bit"),
    (lambda d, p: np.float16(RIGHT_DIFF(d, p)), "16-bit"),
])
def test_wrong_difference_std_answers_fail(wrong, says):
    with pytest.raises(AssertionError, match=says):
        check_difference_std(wrong)


def test_difference_std_probes_correlations_afresh():
    seen = []
    check_difference_std(lambda d, p: (seen.append((d, p)), RIGHT_DIFF(d, p))[1])
    assert all(0 <= p < 1 for _, p in seen) and len({p for _, p in seen}) >= 6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_difference_std_probes_a_wide_head_and_nearly_equal_answers(seed):
    seen = []
    check_difference_std(lambda d, p: (seen.append((d, p)), RIGHT_DIFF(d, p))[1], seed=seed)
    assert max(d for d, _ in seen) >= 100_000 and 0.95 <= max(p for _, p in seen) <= 0.999
    # an answer right at moderate arguments and wrong only for a wide head, or only for nearly equal answers
    for wrong in (lambda d, p: RIGHT_DIFF(d, p) * (1.001 if d > 50_000 else 1.0),
                  lambda d, p: RIGHT_DIFF(d, p) * (1.001 if p > 0.95 else 1.0)):
        with pytest.raises(AssertionError):
            check_difference_std(wrong, seed=seed)


def test_unwritten_tasks_report_not_implemented(capsys):
    def todo(*args):
        raise NotImplementedError
    assert check_std_for_unit_variance(todo) is False
    assert check_default_head_reward_std(todo) is False
    assert check_difference_std(todo) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["std_for_unit_variance", "default_head_reward_std", "difference_std"])
def test_every_task_has_three_hints(task, capsys):
    hint(task, 3)
    assert "hint 3/3" in capsys.readouterr().out
