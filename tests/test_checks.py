"""rmlib.checks: every checker accepts the reference and other right answers, and rejects wrong ones with the right hint.

Two tables hold the cases: ACCEPT (right answers in several styles: float32/float64, loop/vectorised,
functional/in-place) and REJECT (wrong answers of every kind the worksheets were fooled by: a parameter
probed at one value, symmetric probes, a formula instead of an estimate, a broken tensor contract,
guards tested on one bad value, untested floors, autograd inside a "by hand" gradient, misleading hints).
Each checker has its reference plus >= 2 other styles in ACCEPT and >= 8 kinds in REJECT (a test counts them).
"""

import collections
import decimal
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rmlib import checks, layer_init, normalize_rewards, score_head_std
from rmlib.checks import _contract
from rmlib.theory import sample_hidden_states


@pytest.fixture(autouse=True)
def probe_seeds_fixed_by_the_test_name(request, monkeypatch):
    # In a notebook every check draws its probe seed from the OS. A test must not depend on that draw: a wrong
    # answer the probes miss on some draws (a NaN guard that reads only the first ten rewards, against a NaN
    # placed anywhere) made a test fail now and then. Each test gets its own fixed sequence of fresh seeds,
    # so a failure replays, and calls within a test still get different probes.
    import random

    draws = random.Random(request.node.nodeid)
    monkeypatch.setattr(_contract, "_fresh_seed", lambda: draws.randrange(2**31))


def fails_with(checker, fn, hint: str) -> None:
    with pytest.raises(AssertionError, match=hint):
        checker(fn)


# ----------------------------------------------------------------------------------------- shared contract


def not_yet(*args):
    raise NotImplementedError


# Every public checker, including ones added later, is held to the shared contract.
CHECKERS = [getattr(checks, name) for name in checks.__all__ if name.startswith("check_")]
MINE = ["check_predicted_variance", "check_mc_variance", "check_formula_breaker", "check_layer_init",
        "check_score_head_std", "check_bradley_terry_loss", "check_bt_gradient", "check_relative_error",
        "check_reward_gain_bias", "check_normalise_on_reference"]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_stub_prints_not_implemented_and_returns_false(checker, capsys):
    assert checker(not_yet) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_non_callable_is_an_assertion_error_saying_what_to_pass(checker):
    with pytest.raises(AssertionError, match="expects your function"):
        checker(42)


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_checker_only_ever_raises_assertion_error(checker):
    """Whatever comes back (wrong types, shapes, objects), the checker fails with a hint, never crashes."""
    for weird in [lambda *a: object(), lambda *a: (object(), object()), lambda *a: torch.zeros(3, 0),
                  lambda *a: [1, 2, 3], lambda *a: float("nan"), lambda *a: (_ for _ in ()).throw(IndexError("x"))]:
        with pytest.raises(AssertionError):
            checker(weird)


def test_a_crash_in_the_learners_code_is_explained():
    def crashes(layer, std):
        raise KeyError("oops")

    fails_with(checks.check_layer_init, crashes,
               r"your function crashes raised KeyError: 'oops'\n  when called as layer_init\(nn.Linear")


def test_checkers_leave_the_global_random_state_alone(capsys):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    assert checks.check_layer_init(layer_init)
    assert torch.equal(torch.get_rng_state(), before)


def test_reference_relative_error_is_the_cs231n_metric():
    x = torch.tensor([1.0, 0.0, -2.0])
    y = torch.tensor([1.0, 0.0, 2.0])
    assert checks.relative_error(x, y) == 1.0  # opposite signs; the 0/0 coordinate counts as 0
    assert checks.relative_error(x, x) == 0.0


def test_every_outcome_is_kept_as_a_structured_record(capsys):
    checks.check_score_head_std(score_head_std)
    assert checks.RECORDS["score_head_std"]["status"] == "passed"
    with pytest.raises(AssertionError):
        checks.check_score_head_std(lambda d: 0.02)
    record = checks.RECORDS["score_head_std"]
    assert record["status"] == "failed" and "initializer_range" in record["message"]
    assert record["module"] == "layer_init" and record["checker"] == "check_score_head_std"
    checks.check_score_head_std(not_yet)
    assert checks.RECORDS["score_head_std"]["status"] == "not attempted"


def test_inside_a_kernel_the_record_is_displayed_as_a_mime_bundle(monkeypatch):
    shown = []
    monkeypatch.setattr(_contract, "_in_kernel", lambda: True)
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    checks.check_score_head_std(score_head_std)
    (bundle, raw), = shown
    assert raw and bundle[checks.MIME_TYPE]["status"] == "passed"
    assert bundle["text/plain"].startswith("✓ score_head_std")


def test_a_failure_points_at_the_hints():
    fails_with(checks.check_score_head_std, lambda d: 0.02, r"stuck\? rmlib.checks.hint\('score_head_std'\)")


# ------------------------------------------------------------------------------------------------ hints


def test_every_task_with_a_checker_in_my_modules_has_three_graded_hints():
    hints = checks.available_hints()
    for task in _contract.TASKS.values():
        if task.module == "sweep":
            continue  # worksheet 05's owner adds its HINTS
        assert len(hints[task.name]) == 3 and all(len(h) > 20 for h in hints[task.name]), task.name


def test_hint_prints_the_requested_level_and_points_at_the_next(capsys):
    checks.hint("layer_init")
    out = capsys.readouterr().out
    assert "hint 1/3 for layer_init — a first nudge" in out and "rmlib.checks.hint('layer_init', 2)" in out
    checks.hint("layer_init", 3)
    assert "normal_(layer.weight, mean=0.0, std=std)" in capsys.readouterr().out
    checks.hint("layer_init", 9)
    assert "last hint" in capsys.readouterr().out
    with pytest.raises(ValueError, match="tasks with hints"):
        checks.hint("no_such_task")
    with pytest.raises(ValueError, match="level"):
        checks.hint("layer_init", 0)


def test_hint_finds_a_hints_dict_in_any_checker_module(monkeypatch, capsys):
    from rmlib.checks import sweep

    monkeypatch.setattr(sweep, "HINTS", {"loglog_slope": ("n", "k", "f")}, raising=False)
    checks.hint("loglog_slope", 2)
    assert "hint 2/3 for loglog_slope" in capsys.readouterr().out


def test_the_scoreboard_summarises_the_records(capsys, monkeypatch):
    monkeypatch.setattr(_contract, "RECORDS", {})
    monkeypatch.setattr(checks, "RECORDS", _contract.RECORDS)
    checks.scoreboard()
    assert "no check has run" in capsys.readouterr().out
    checks.check_score_head_std(score_head_std)
    checks.check_layer_init(not_yet)
    capsys.readouterr()
    checks.scoreboard()
    out = capsys.readouterr().out
    assert "worksheet 03" in out and "✓ score_head_std" in out and "· layer_init" in out and "1 of 3 tasks pass" in out
    checks.scoreboard("6")
    assert "worksheet 06" in capsys.readouterr().out and "0 of 2"


# =========================================================================================== answers
# Right answers, several styles each.


def mc_reference(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return (w * h).sum(-1).var().item()


def mc_float64_population(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator, dtype=torch.float64) * std
    h = torch.randn(n, d, generator=generator, dtype=torch.float64) * sigma_h
    r = torch.einsum("nd,nd->n", w, h)
    return torch.as_tensor(((r - r.mean()) ** 2).mean())  # a 0-dim tensor, population variance


def mc_chunked_loop(d, std, sigma_h, n, generator):
    rewards = []
    for start in range(0, n, 4096):  # a loop over chunks, still one fresh (w, h) per sample
        m = min(4096, n - start)
        rewards.append((torch.randn(m, d, generator=generator) * std * torch.randn(m, d, generator=generator) * sigma_h).sum(-1))
    return torch.cat(rewards).var().item()


def mc_mean_square(d, std, sigma_h, n, generator):  # E r = 0, so the mean square estimates Var(r) too
    w = torch.empty(n, d).normal_(0, std, generator=generator)
    h = torch.empty(n, d).normal_(0, sigma_h, generator=generator)
    return (w * h).sum(1).pow(2).mean().item()


def offset_states(n, d, generator):
    return sample_hidden_states(n, d, 1.0, offset=torch.full((d,), 3.0), generator=generator)


def random_offset_states(n, d, generator):
    offset = torch.randn(d, generator=generator) * 2  # one random mean, shared by every row
    return torch.randn(n, d, generator=generator, dtype=torch.float64) + offset


def li_data_normal(layer, std):
    layer.weight.data.normal_(0.0, std)
    return layer


def li_no_grad_copy(layer, std):
    with torch.no_grad():
        layer.weight.copy_(torch.randn_like(layer.weight) * std)
    return layer


def bt_reference(chosen, rejected):
    return -F.logsigmoid(chosen - rejected).mean()


def bt_manual_stable(chosen, rejected):
    d = chosen - rejected
    return (torch.clamp(-d, min=0) + torch.log1p(torch.exp(-d.abs()))).mean()  # max(−Δ, 0) + log1p(e^−|Δ|)


def bt_grad_reference(chosen, rejected):
    g = -torch.sigmoid(rejected - chosen) / chosen.numel()
    return g, -g


def bt_grad_via_sigmoid_delta(chosen, rejected):
    p = torch.sigmoid(chosen - rejected)  # σ(Δ) − 1 = −σ(−Δ)
    g = (p - 1) / len(chosen)
    return g, -g


def bt_grad_loop(chosen, rejected):
    n = chosen.shape[0]
    g = torch.stack([-torch.sigmoid(r - c) / n for c, r in zip(chosen, rejected)])
    return g, -g


def gb_reference(ref):
    r = ref.detach().double().flatten()
    if r.numel() < 2 or not torch.isfinite(r).all():
        raise ValueError("bad reference")
    mean, std = r.mean().item(), r.std(correction=0).item()
    if std <= 1e-6 * max(1.0, abs(mean)):
        raise ValueError("zero variance")
    return 1 / std, -mean / std


def gb_tensors(ref):
    r = ref.reshape(-1).to(torch.float64)
    if len(r) < 2 or torch.isnan(r).any() or torch.isinf(r).any():
        raise ValueError("need >= 2 finite rewards")
    mean, var = r.mean(), ((r - r.mean()) ** 2).mean()
    if var.sqrt() <= 1e-6 * max(1.0, mean.abs().item()):
        raise ValueError("no spread")
    return 1 / var.sqrt(), -mean / var.sqrt()  # 0-dim tensors


def gb_library(ref):  # rmlib's own implementation of the task: not an answer
    from rmlib import RewardNormalizer

    norm = RewardNormalizer.fit(ref)
    return norm.gain, norm.bias


def gb_numpy(ref):
    r = ref.detach().cpu().numpy().astype(np.float64).ravel()
    if r.size < 2 or not np.isfinite(r).all():
        raise ValueError("need at least two finite rewards")
    mean, std = float(r.mean()), float(r.std())  # numpy's std is the population std by default
    if std <= 1e-6 * max(1.0, abs(mean)):
        raise ValueError(f"no spread: std {std:.3g}")
    return 1.0 / std, -mean / std


def norm_reference(rewards, samples):
    gain, bias = gb_reference(rewards.gather(1, samples))
    return gain * rewards + bias


def norm_library(rewards, samples):  # rmlib's own implementation of the task: not an answer
    return normalize_rewards(rewards, rewards.gather(1, samples))


def norm_take_along(rewards, samples):
    picked = torch.take_along_dim(rewards, samples, dim=1)
    gain, bias = gb_numpy(picked)
    return rewards * gain + bias


def norm_loop(rewards, samples):
    picked = torch.stack([rewards[i, samples[i]] for i in range(rewards.shape[0])])
    gain, bias = gb_tensors(picked)
    return (gain * rewards.double() + bias).to(rewards.dtype)


ACCEPT = [
    ("check_predicted_variance", "reference", lambda d, s, h: d * s**2 * h**2),
    ("check_predicted_variance", "tensor", lambda d, s, h: torch.tensor(float(d)) * s * s * h * h),
    ("check_predicted_variance", "loop", lambda d, s, h: sum(s**2 * h**2 for _ in range(d))),
    ("check_mc_variance", "reference", mc_reference),
    ("check_mc_variance", "float64-population-tensor", mc_float64_population),
    ("check_mc_variance", "chunked-loop", mc_chunked_loop),
    ("check_formula_breaker", "shared-offset", offset_states),
    ("check_formula_breaker", "random-shared-offset-float64", random_offset_states),
    ("check_formula_breaker", "constant", lambda n, d, g: torch.ones(n, d)),  # σ_h² = 0 but Var(r) = σ_w² d
    ("check_formula_breaker", "uniform-0-1", lambda n, d, g: torch.rand(n, d, generator=g)),
    ("check_layer_init", "reference", layer_init),
    ("check_layer_init", "data-normal", li_data_normal),
    ("check_layer_init", "no-grad-copy", li_no_grad_copy),
    ("check_score_head_std", "reference", score_head_std),
    ("check_score_head_std", "float32-tensor", lambda d: torch.tensor(d + 1.0).rsqrt()),
    ("check_score_head_std", "power", lambda d: (d + 1) ** -0.5),
    ("check_bradley_terry_loss", "reference", bt_reference),
    ("check_bradley_terry_loss", "softplus", lambda c, r: F.softplus(r - c).mean()),
    ("check_bradley_terry_loss", "manual-stable", bt_manual_stable),
    ("check_bt_gradient", "reference", bt_grad_reference),
    ("check_bt_gradient", "sigmoid-delta-minus-one", bt_grad_via_sigmoid_delta),
    ("check_bt_gradient", "loop", bt_grad_loop),
    ("check_relative_error", "reference", checks.relative_error),
    ("check_relative_error", "torch-max-clamp", lambda x, y: torch.max((x - y).abs() / torch.clamp(x.abs() + y.abs(), min=1e-8))),
    ("check_relative_error", "elementwise-maximum", lambda x, y: float(((x - y).abs() / torch.maximum(x.abs() + y.abs(), torch.tensor(1e-8, dtype=x.dtype))).max())),
    ("check_reward_gain_bias", "reference", gb_reference),
    ("check_reward_gain_bias", "tensors", gb_tensors),
    ("check_reward_gain_bias", "numpy", gb_numpy),
    ("check_normalise_on_reference", "reference", norm_reference),
    ("check_normalise_on_reference", "take-along-dim", norm_take_along),
    ("check_normalise_on_reference", "loop", norm_loop),
]


@pytest.mark.parametrize("checker, style, fn", ACCEPT, ids=[f"{c}-{s}" for c, s, _ in ACCEPT])
def test_right_answers_pass(checker, style, fn, capsys):
    assert getattr(checks, checker)(fn) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ ") and out.count("\n") == 1


# =========================================================================================== wrong answers


def _pv(f):
    return f


def mc_std(d, std, sigma_h, n, generator):
    return math.sqrt(mc_reference(d, std, sigma_h, n, generator))


def mc_w_variance(d, std, sigma_h, n, generator):
    return mc_reference(d, std**2, sigma_h, n, generator)


def mc_h_variance(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h**2, n, generator)


def mc_mean_over_d(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return (w * h).mean(-1).var().item()


def mc_uniform(d, std, sigma_h, n, generator):
    w = torch.rand(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return (w * h).sum(-1).var().item()


def mc_shared_head(d, std, sigma_h, n, generator):
    w = torch.randn(d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return (h @ w).var().item()


def mc_no_generator(d, std, sigma_h, n, generator):
    w = torch.randn(n, d) * std
    h = torch.randn(n, d) * sigma_h
    return (w * h).sum(-1).var().item()


def mc_one_coordinate(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return (w * h)[:, 0].var().item()


def mc_formula(d, std, sigma_h, n, generator):
    return d * std**2 * sigma_h**2


def mc_formula_plus_noise(d, std, sigma_h, n, generator):
    return d * std**2 * sigma_h**2 * (1 + 1e-4 * torch.randn(1, generator=generator).item())


def mc_ignores_n(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h, 200_000, generator)


def mc_hard_coded_std(d, std, sigma_h, n, generator):
    return mc_reference(d, 0.5, sigma_h, n, generator)


def mc_seeds_inside(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h, n, torch.Generator().manual_seed(0))


def li_returns_none(layer, std):
    nn.init.normal_(layer.weight, std=std)


def li_new_layer(layer, std):
    new = nn.Linear(layer.in_features, layer.out_features)
    nn.init.normal_(new.weight, std=std)
    return new


def li_new_parameter(layer, std):
    layer.weight = nn.Parameter(torch.randn_like(layer.weight) * std)
    return layer


def li_touches_bias(layer, std):
    nn.init.normal_(layer.weight, std=std)
    nn.init.zeros_(layer.bias)
    return layer


def li_uniform(layer, std):
    nn.init.uniform_(layer.weight, -std, std)
    return layer


def li_uniform_same_std(layer, std):
    nn.init.uniform_(layer.weight, -math.sqrt(3) * std, math.sqrt(3) * std)
    return layer


def li_truncated(layer, std):
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    return layer


def li_truncated_default(layer, std):
    nn.init.trunc_normal_(layer.weight, std=std)  # cuts at ±2 absolute: invisible at std 0.37, not at 2.0
    return layer


def li_std_as_mean(layer, std):
    nn.init.normal_(layer.weight, std)  # the classic slip: the 2nd positional argument is the mean
    return layer


def li_variance(layer, std):
    nn.init.normal_(layer.weight, std=std**2)
    return layer


def li_ignores_std(layer, std):
    nn.init.normal_(layer.weight, std=1 / math.sqrt(layer.weight.shape[1] + 1))
    return layer


def li_hard_coded_std(layer, std):
    nn.init.normal_(layer.weight, std=0.37 if std > 0 else 0.0)
    return layer


def li_does_nothing(layer, std):
    return layer


def li_bias_free_crash(layer, std):
    nn.init.normal_(layer.weight, std=std)
    layer.bias.data.clone()  # AttributeError when bias is None
    return layer


def li_detaches(layer, std):
    nn.init.normal_(layer.weight, std=std)
    layer.weight.requires_grad_(False)
    return layer


def li_float64_swap(layer, std):
    layer.weight.data = torch.randn(layer.weight.shape, dtype=torch.float64) * std
    return layer


def li_float32_swap(layer, std):
    layer.weight.data = torch.randn(layer.weight.shape) * std  # breaks a float64 layer
    return layer


def li_transposed(layer, std):
    layer.weight.data = torch.randn(layer.weight.shape[::-1]) * std
    return layer


def li_own_generator(layer, std):
    nn.init.normal_(layer.weight, std=std, generator=torch.Generator().manual_seed(0))
    return layer


def bt_where(c, r):
    d = c - r
    return torch.where(d > 0, torch.log1p(torch.exp(-d)), -d + torch.log1p(torch.exp(d))).mean()


def bt_grad_unstable(c, r):
    e = torch.exp(r - c)
    g = -e / (1 + e) / c.numel()
    return g, -g


def bt_grad_autograd(c, r):
    c = c.clone().requires_grad_()
    r = r.clone().requires_grad_()
    return torch.autograd.grad(F.softplus(r - c).mean(), (c, r))


def bt_grad_backward(c, r):
    c = c.detach().requires_grad_()
    F.softplus(r - c).mean().backward()
    return c.grad, -c.grad


def gb_nan_guard_only(ref):
    r = ref.double().flatten()
    if r.numel() < 2 or torch.isnan(r).any():
        raise ValueError("bad")
    mean, std = r.mean().item(), r.std(correction=0).item()
    if std <= 1e-6 * max(1.0, abs(mean)):
        raise ValueError("zero variance")
    return 1 / std, -mean / std


def gb_no_empty_guard(ref):
    r = ref.double().flatten()
    if r.numel() == 0:
        return 1.0, 0.0
    return gb_reference(ref)


def gb_flat_only_1d(ref):
    if ref.dim() != 1:
        r = ref[0]  # uses one row only
    else:
        r = ref
    return gb_reference(r)


def norm_float32_out(rewards, samples):
    return norm_reference(rewards, samples).float()


def norm_first_m(rewards, samples):
    first = rewards[:, : samples.shape[1]]
    mean, std = first.mean(), first.std(correction=0)
    return (rewards - mean) / std


def norm_no_guard(rewards, samples):
    ref = rewards.gather(1, samples)
    return (rewards - ref.mean()) / ref.std(correction=0).clamp_min(1e-12)


REJECT = [
    # ------------------------------------------------------------------ predict_reward_variance (worksheet 02)
    ("check_predicted_variance", "std", lambda d, s, h: math.sqrt(d) * s * h, "standard deviation of r"),
    ("check_predicted_variance", "no-squares", lambda d, s, h: d * s * h, "variances multiply"),
    ("check_predicted_variance", "no-d", lambda d, s, h: s**2 * h**2, "factor d is missing"),
    ("check_predicted_variance", "sigma-h-unsquared", lambda d, s, h: d * s**2 * h, "σ_h must be squared"),
    ("check_predicted_variance", "sigma-w-unsquared", lambda d, s, h: d * s * h**2, "σ_w must be squared"),
    ("check_predicted_variance", "d-squared", lambda d, s, h: (d * s * h) ** 2, "you squared the sum"),
    ("check_predicted_variance", "d-plus-one", lambda d, s, h: (d + 1) * s**2 * h**2, r"d\+1 terms"),
    ("check_predicted_variance", "none", lambda d, s, h: None, "returned None"),
    ("check_predicted_variance", "hard-coded-sigma-h", lambda d, s, h: d * s**2 * 0.25, r"expected d σ_w² σ_h²"),
    ("check_predicted_variance", "string", lambda d, s, h: "1.0", "must return a number"),
    # ------------------------------------------------------------------ mc_reward_variance
    ("check_mc_variance", "std", mc_std, "standard deviation of r"),
    ("check_mc_variance", "w-variance", mc_w_variance, "scaled w by std²"),
    ("check_mc_variance", "h-variance", mc_h_variance, "scaled h by σ_h²"),
    ("check_mc_variance", "mean-over-d", mc_mean_over_d, "averaged over the d coordinates"),
    ("check_mc_variance", "one-coordinate", mc_one_coordinate, "single product"),
    ("check_mc_variance", "uniform", mc_uniform, "torch.rand"),
    ("check_mc_variance", "shared-head", mc_shared_head, "one head w .*reused"),
    ("check_mc_variance", "no-generator", mc_no_generator, "pass generator=generator"),
    ("check_mc_variance", "none", lambda *a: None, "returned None"),
    ("check_mc_variance", "formula", mc_formula, "that is the formula"),
    ("check_mc_variance", "formula-plus-tiny-noise", mc_formula_plus_noise, "spread by .* across"),
    ("check_mc_variance", "ignores-n", mc_ignores_n, "exactly n fresh"),
    ("check_mc_variance", "hard-coded-std", mc_hard_coded_std, "does not follow the std argument"),
    ("check_mc_variance", "seeds-inside", mc_seeds_inside, "different generators gave the same"),
    # ------------------------------------------------------------------ hidden_states_that_break_the_formula
    ("check_formula_breaker", "isotropic", lambda n, d, g: torch.randn(n, d, generator=g), "Isotropic h at any scale"),
    ("check_formula_breaker", "scaled", lambda n, d, g: 5 * torch.randn(n, d, generator=g), "rescaling h rescales"),
    ("check_formula_breaker", "anisotropic", lambda n, d, g: torch.randn(n, d, generator=g) * torch.linspace(0.1, 3, d),
     "Unequal per-coordinate variances"),
    ("check_formula_breaker", "correlated", lambda n, d, g: torch.randn(n, 1, generator=g).expand(n, d).clone(),
     "Correlations between coordinates"),
    ("check_formula_breaker", "none", lambda n, d, g: None, "returned None"),
    ("check_formula_breaker", "transposed", lambda n, d, g: offset_states(n, d, g).T, "transposed"),
    ("check_formula_breaker", "nan", lambda n, d, g: torch.full((n, d), float("nan")), "inf or NaN"),
    ("check_formula_breaker", "inf", lambda n, d, g: offset_states(n, d, g).index_fill(0, torch.tensor([3]), float("inf")),
     "inf or NaN"),
    ("check_formula_breaker", "no-generator", lambda n, d, g: offset_states(n, d, None), "pass generator=generator"),
    ("check_formula_breaker", "numpy", lambda n, d, g: offset_states(n, d, g).numpy(), "floating-point tensor"),
    ("check_formula_breaker", "integer", lambda n, d, g: torch.ones(n, d, dtype=torch.long), "floating-point tensor"),
    ("check_formula_breaker", "hard-coded-d", lambda n, d, g: offset_states(n, 64, g), r"expected \(12000, 5\)"),
    # ------------------------------------------------------------------ layer_init (worksheet 03)
    ("check_layer_init", "returns-none", li_returns_none, "returned None"),
    ("check_layer_init", "new-layer", li_new_layer, "a new layer instead of in place"),
    ("check_layer_init", "new-parameter", li_new_parameter, "a new Parameter instead of in place"),
    ("check_layer_init", "touches-bias", li_touches_bias, "the bias was changed"),
    ("check_layer_init", "uniform", li_uniform, "uniform instead of normal"),
    ("check_layer_init", "uniform-same-std", li_uniform_same_std, "uniform instead of normal"),
    ("check_layer_init", "truncated", li_truncated, "truncated normal"),
    ("check_layer_init", "truncated-default", li_truncated_default, "truncated normal"),
    ("check_layer_init", "std-as-mean", li_std_as_mean, "passes std as the MEAN"),
    ("check_layer_init", "variance", li_variance, r"used std² \(a variance\)"),
    ("check_layer_init", "ignores-std", li_ignores_std, "ignored the std argument"),
    ("check_layer_init", "hard-coded-std", li_hard_coded_std, "does your function use its std argument"),
    ("check_layer_init", "does-nothing", li_does_nothing, "unchanged"),
    ("check_layer_init", "bias-free-crash", li_bias_free_crash, "don't touch the bias"),
    ("check_layer_init", "detaches", li_detaches, "no longer requires grad"),
    ("check_layer_init", "float64-swap", li_float64_swap, "from float32 on cpu to float64"),
    ("check_layer_init", "float32-swap", li_float32_swap, "from float64 on cpu to float32"),
    ("check_layer_init", "transposed", li_transposed, r"changed the weight's shape from \(1, 200000\) to \(200000, 1\)"),
    ("check_layer_init", "own-generator", li_own_generator, "two calls gave the same weights"),
    # ------------------------------------------------------------------ score_head_std
    ("check_score_head_std", "variance-as-std", lambda d: 1 / (d + 1), r"1/\(d\+1\) instead of 1/sqrt\(d\+1\)"),
    ("check_score_head_std", "no-plus-one", lambda d: 1 / math.sqrt(d), r"forgot the \+1"),
    ("check_score_head_std", "upside-down", lambda d: math.sqrt(d + 1), "upside down"),
    ("check_score_head_std", "pytorch-default", lambda d: 1 / math.sqrt(3 * d), "PyTorch's default"),
    ("check_score_head_std", "hf-constant", lambda d: 0.02, "initializer_range"),
    ("check_score_head_std", "xavier", lambda d: math.sqrt(2 / (d + 1)), "Xavier"),
    ("check_score_head_std", "one-over-d", lambda d: 1 / d, "neither the std nor the variance"),
    ("check_score_head_std", "integer-division", lambda d: 1 // math.sqrt(d + 1), "integer division"),
    ("check_score_head_std", "none", lambda d: None, "returned None"),
    ("check_score_head_std", "string", lambda d: "0.1", "must return a number"),
    ("check_score_head_std", "other", lambda d: 1 / math.sqrt(d + 2), r"expected 1/sqrt\(1\+1\)"),
    ("check_score_head_std", "hard-coded-4096", lambda d: 1 / math.sqrt(4097), r"expected 1/sqrt\(1\+1\)"),
    # ------------------------------------------------------------------ bradley_terry_loss (worksheet 04)
    ("check_bradley_terry_loss", "none", lambda c, r: None, "returned None"),
    ("check_bradley_terry_loss", "no-mean", lambda c, r: -F.logsigmoid(c - r), "take the .mean"),
    ("check_bradley_terry_loss", "no-minus", lambda c, r: F.logsigmoid(c - r).mean(), "dropped the minus"),
    ("check_bradley_terry_loss", "swapped", lambda c, r: -F.logsigmoid(r - c).mean(), "wrong sign of Δ"),
    ("check_bradley_terry_loss", "sum", lambda c, r: -F.logsigmoid(c - r).sum(), "sum instead of mean"),
    ("check_bradley_terry_loss", "first-pair", lambda c, r: -F.logsigmoid(c - r)[0], "first pair only"),
    ("check_bradley_terry_loss", "log-sigmoid", lambda c, r: -torch.log(torch.sigmoid(c - r)).mean(),
     "overflows at large reward differences"),
    ("check_bradley_terry_loss", "log-1-exp", lambda c, r: torch.log(1 + torch.exp(r - c)).mean(),
     "overflows at large reward differences"),
    ("check_bradley_terry_loss", "eps", lambda c, r: -torch.log(torch.sigmoid(c - r) + 1e-8).mean(), "an eps or a clamp"),
    ("check_bradley_terry_loss", "clamp", lambda c, r: -torch.log(torch.sigmoid(c - r).clamp_min(1e-12)).mean(),
     "an eps or a clamp"),
    ("check_bradley_terry_loss", "tiny-clamp", lambda c, r: -torch.log(torch.sigmoid(c - r).clamp_min(1e-30)).mean(),
     "caps it"),
    ("check_bradley_terry_loss", "margin", lambda c, r: -F.logsigmoid(c - r - 0.5).mean(), "expected mean −log σ"),
    ("check_bradley_terry_loss", "detached", lambda c, r: torch.tensor(-F.logsigmoid(c - r).mean().item()), "no gradient"),
    ("check_bradley_terry_loss", "where", bt_where, "torch.where evaluates both branches"),
    ("check_bradley_terry_loss", "float", lambda c, r: (-F.logsigmoid(c - r).mean()).item(), "return a torch tensor"),
    ("check_bradley_terry_loss", "float32-from-float64", lambda c, r: -F.logsigmoid((c - r).float()).mean(),
     "float32 tensor from float64 inputs: return the loss in the inputs' dtype"),
    ("check_bradley_terry_loss", "float64-from-float32", lambda c, r: -F.logsigmoid((c - r).double()).mean(),
     "float64 tensor from float32 inputs"),
    # ------------------------------------------------------------------ bradley_terry_grad
    ("check_bt_gradient", "none", lambda c, r: None, "returned None"),
    ("check_bt_gradient", "single", lambda c, r: bt_grad_reference(c, r)[0], "return a pair of tensors"),
    ("check_bt_gradient", "sign", lambda c, r: tuple(-g for g in bt_grad_reference(c, r)), "wrong sign"),
    ("check_bt_gradient", "sum", lambda c, r: tuple(g * c.numel() for g in bt_grad_reference(c, r)), "gradient of the sum"),
    ("check_bt_gradient", "sigma-delta", lambda c, r: (-torch.sigmoid(c - r) / c.numel(), torch.sigmoid(c - r) / c.numel()),
     r"σ\(Δ\) where σ\(−Δ\) belongs"),
    ("check_bt_gradient", "same-sign", lambda c, r: (bt_grad_reference(c, r)[0],) * 2, "opposite sign"),
    ("check_bt_gradient", "shape", lambda c, r: tuple(g[:-1] for g in bt_grad_reference(c, r)), "shape of its input"),
    ("check_bt_gradient", "unstable", bt_grad_unstable, "inf/inf"),
    ("check_bt_gradient", "scaled", lambda c, r: tuple(g * 1.001 for g in bt_grad_reference(c, r)), "relative error 0.0005"),
    ("check_bt_gradient", "autograd-grad", bt_grad_autograd, "seems to use autograd|uses torch.autograd.grad"),
    ("check_bt_gradient", "autograd-backward", bt_grad_backward, "seems to use autograd|uses torch.autograd.backward|uses torch.Tensor.requires_grad_"),
    ("check_bt_gradient", "hard-coded-n", lambda c, r: tuple(g * c.numel() / 512 for g in bt_grad_reference(c, r)),
     "batch size is hard-coded"),
    ("check_bt_gradient", "float32-from-float64", lambda c, r: tuple(g.float() for g in bt_grad_reference(c, r)),
     "compute the gradient in the inputs' dtype"),
    # ------------------------------------------------------------------ relative_error
    ("check_relative_error", "absolute", lambda x, y: (x - y).abs().max(), "ABSOLUTE error"),
    ("check_relative_error", "mean", lambda x, y: ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).mean(),
     "mean instead of max"),
    ("check_relative_error", "signed", lambda x, y: ((x - y) / (x.abs() + y.abs()).clamp_min(1e-8)).max(), r"take \|x − y\|"),
    ("check_relative_error", "abs-of-sum", lambda x, y: ((x - y).abs() / (x + y).abs().clamp_min(1e-8)).max(),
     "opposite signs cancel"),
    ("check_relative_error", "x-only", lambda x, y: ((x - y).abs() / x.abs().clamp_min(1e-8)).max(), r"not by \|x\| alone"),
    ("check_relative_error", "no-floor", lambda x, y: ((x - y).abs() / (x.abs() + y.abs())).max(), "floor is missing"),
    ("check_relative_error", "added-eps", lambda x, y: ((x - y).abs() / (x.abs() + y.abs() + 1e-8)).max(),
     "a max, not an added eps"),
    ("check_relative_error", "floor-1e-6", lambda x, y: ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-6)).max(),
     "not 1e-6"),
    ("check_relative_error", "floor-1e-12", lambda x, y: ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-12)).max(),
     "not 1e-12"),
    ("check_relative_error", "in-place", lambda x, y: (x.sub_(y).abs_() / (x.abs() + y.abs()).clamp_min(1e-8)).max(),
     "changed its input `x` in place"),
    ("check_relative_error", "none", lambda x, y: None, "returned None"),
    ("check_relative_error", "tensor", lambda x, y: (x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8),
     "must return one number"),
    # ------------------------------------------------------------------ reward_gain_bias (worksheet 06)
    ("check_reward_gain_bias", "nan-guard-only", gb_nan_guard_only, "catches nan AND ±inf"),
    ("check_reward_gain_bias", "no-empty-guard", gb_no_empty_guard, "an empty tensor"),
    ("check_reward_gain_bias", "one-row", gb_flat_only_1d, r"shape \(4, 250\)"),
    ("check_reward_gain_bias", "multiply", lambda ref: (1 / gb_reference(ref)[0], gb_reference(ref)[1] / gb_reference(ref)[0] ** 2),
     "multiplied by the std"),
    ("check_reward_gain_bias", "swapped", lambda ref: gb_reference(ref)[::-1], r"returned \(bias, gain\)"),
    ("check_reward_gain_bias", "bias-sign", lambda ref: (gb_reference(ref)[0], -gb_reference(ref)[1]), "wrong sign of the bias"),
    ("check_reward_gain_bias", "returns-rewards", lambda ref: gb_reference(ref)[0] * ref + gb_reference(ref)[1],
     "not the normalised rewards"),
    ("check_reward_gain_bias", "none", lambda ref: None, "must return a pair"),
    ("check_reward_gain_bias", "nan-out", lambda ref: (gb_reference(ref), (float("nan"), 0.0))[1], "finite gain and bias"),
    ("check_reward_gain_bias", "rmlib-own", gb_library, "calls rmlib's own RewardNormalizer; write it yourself"),
    # ------------------------------------------------------------------ normalise_on_reference
    ("check_normalise_on_reference", "all-responses", lambda rw, s: (rw - rw.mean()) / rw.std(correction=0),
     "fitted on all responses"),
    ("check_normalise_on_reference", "per-prompt", lambda rw, s: (rw - rw.gather(1, s).mean(1, keepdim=True))
     / rw.gather(1, s).std(1, keepdim=True, correction=0), "each prompt separately"),
    ("check_normalise_on_reference", "sample-std", lambda rw, s: (rw - rw.gather(1, s).mean()) / rw.gather(1, s).std(),
     "correction=0"),
    ("check_normalise_on_reference", "only-samples", lambda rw, s: norm_reference(rw, s).gather(1, s),
     "normalise every response"),
    ("check_normalise_on_reference", "in-place", lambda rw, s: rw.sub_(rw.gather(1, s).mean()), "in place"),
    ("check_normalise_on_reference", "unscaled", lambda rw, s: rw - rw.gather(1, s).mean(), "mean 0 and std 1"),
    ("check_normalise_on_reference", "not-a-tensor", lambda rw, s: norm_reference(rw, s).tolist(), "as a tensor"),
    ("check_normalise_on_reference", "float32-out", norm_float32_out, "in the dtype of `rewards`"),
    ("check_normalise_on_reference", "first-m-columns", norm_first_m, "first M responses"),
    ("check_normalise_on_reference", "no-guard", norm_no_guard, "no spread"),
    ("check_normalise_on_reference", "rmlib-own", norm_library, "calls rmlib's own normalize_rewards; write it yourself"),
]


@pytest.mark.parametrize("checker, kind, fn, hint", REJECT, ids=[f"{c}-{k}" for c, k, _, _ in REJECT])
def test_wrong_answers_fail_with_the_right_hint(checker, kind, fn, hint):
    fails_with(getattr(checks, checker), fn, hint)


def test_every_checker_of_worksheets_02_to_06_has_three_styles_and_eight_kinds_of_wrong_answer():
    accepted = collections.Counter(c for c, _, _ in ACCEPT)
    rejected = collections.Counter(c for c, _, _, _ in REJECT)
    for name in MINE:
        assert accepted[name] >= 3, name
        assert rejected[name] >= 8, name


# ------------------------------------------------------------------------------------------ loglog slope


def slope_reference(x, y):
    keep = (x > 0) & (y > 0)
    lx, ly = x[keep].log(), y[keep].log()
    lx = lx - lx.mean()
    return ((lx * (ly - ly.mean())).sum() / lx.pow(2).sum()).item()


def test_loglog_slope_accepts_the_reference_and_numpy_polyfit():
    import numpy as np

    assert checks.check_loglog_slope(slope_reference)

    def with_polyfit(x, y):
        keep = (x > 0) & (y > 0)
        return float(np.polyfit(np.log10(x[keep].numpy()), np.log10(y[keep].numpy()), 1)[0])

    assert checks.check_loglog_slope(with_polyfit)

    def with_lstsq(x, y):  # a third style: the design matrix [log x, 1] and torch.linalg.lstsq, in float64
        keep = (x > 0) & (y > 0)
        lx, ly = x[keep].double().log(), y[keep].double().log()
        a = torch.stack([lx, torch.ones_like(lx)], 1)
        return torch.linalg.lstsq(a, ly[:, None]).solution[0, 0]

    assert checks.check_loglog_slope(with_lstsq)


def _fit(a, b):
    a0 = a - a.mean()
    slope = ((a0 * (b - b.mean())).sum() / a0.pow(2).sum()).item()
    return slope, (b.mean() - slope * a.mean()).item()


def _kept(x, y):
    keep = (x > 0) & (y > 0)
    return x[keep], y[keep]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, y: _fit(x.log(), y.log())[0], "leave out every pair where x OR y is 0"),
        (lambda x, y: _fit(*_kept(x, y))[0], "take logs of both first"),
        (lambda x, y: _fit(_kept(x, y)[1].log(), _kept(x, y)[0].log())[0], "regressed log x on log y: regress"),
        (lambda x, y: 1 / _fit(_kept(x, y)[1].log(), _kept(x, y)[0].log())[0], "and inverted it"),
        (lambda x, y: _fit(*(t.log() for t in _kept(x, y)))[1], "that is the intercept"),
        (lambda x, y: _fit(_kept(x, y)[0], _kept(x, y)[1].log())[0], "semi-log"),
        (lambda x, y: ((_kept(x, y)[1][-1] / _kept(x, y)[1][0]).log() / (_kept(x, y)[0][-1] / _kept(x, y)[0][0]).log()).item(),
         "two end points"),
        (lambda x, y: (_kept(x, y)[1].log() / _kept(x, y)[0].log()).mean().item(), "not a slope"),
        (lambda x, y: None, "returned None"),
        (lambda x, y: torch.tensor(_fit(*(t.log() for t in _kept(x, y)))), "must return one number"),
        # log x of the first probe is symmetric about 0, so only the asymmetric probes catch this one
        (lambda x, y: (lambda lx, ly: ((lx * ly).sum() / lx.pow(2).sum()).item())(*(t.double().log() for t in _kept(x, y))),
         "a line through the origin"),
        (lambda x, y: 0.7, "expected"),  # the first probe's exponent, hard-coded
    ],
    ids=["zeros-kept", "linear", "swapped", "swapped-inverted", "intercept", "semi-log", "end-points", "mean-ratio",
         "none", "polyfit-pair", "through-origin", "hard-coded"],
)
def test_loglog_slope_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_loglog_slope, wrong, hint)


# -------------------------------------------------------------------------------------- Adam's first step


def adam_reference(grad, lr):
    return -lr * grad / (grad.abs() + 1e-8)


def test_adam_first_step_accepts_the_reference_and_the_textbook_form():
    assert checks.check_adam_first_step(adam_reference)

    def textbook(grad, lr, b1=0.9, b2=0.999, eps=1e-8):
        m, v = (1 - b1) * grad, (1 - b2) * grad**2
        m_hat, v_hat = m / (1 - b1), v / (1 - b2)
        return -lr * m_hat / (v_hat.sqrt() + eps)

    assert checks.check_adam_first_step(textbook)



@pytest.mark.parametrize("optimiser", ["Adam", "AdamW", "computed name", "functional"])
def test_adam_first_step_run_by_torch_optim_is_not_the_derivation(optimiser):
    from torch.optim.adam import adam as adam_functional  # torch.optim does not keep its submodules as attributes

    def with_torch_optim(grad, lr):  # the task is to simplify the step on paper; torch.optim skips exactly that
        p = torch.zeros_like(grad, requires_grad=True)
        p.grad = grad.clone()
        if optimiser == "functional":
            m, v = torch.zeros_like(grad), torch.zeros_like(grad)
            adam_functional([p.detach()], [grad], [m], [v], [], [torch.tensor(0.0)], amsgrad=False,
                            beta1=0.9, beta2=0.999, lr=lr, weight_decay=0.0, eps=1e-8, maximize=False)
            return p.detach()
        cls = getattr(torch.optim, "Ad" + "am") if optimiser == "computed name" else getattr(torch.optim, optimiser)
        opt = cls([p], lr=lr, **({"weight_decay": 0.0} if optimiser == "AdamW" else {}))
        opt.step()
        return p.detach()

    with pytest.raises(AssertionError, match="runs torch.optim's .*on paper"):
        checks.check_adam_first_step(with_torch_optim)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda g, lr: -adam_reference(g, lr), "wrong sign"),
        (lambda g, lr: -lr * g, "SGD's step"),
        (lambda g, lr: -lr * (0.1 * g) / ((0.001 * g**2).sqrt() + 1e-8), "no bias correction"),
        (lambda g, lr: -lr * g / (g**2 + 1e-8).sqrt(), "eps goes outside the square root"),
        (lambda g, lr: -g / (g.abs() + 1e-8), "learning rate is missing"),
        (lambda g, lr: -lr * torch.sign(g), "not exactly −lr·sign"),
        (lambda g, lr: -lr * g / g.abs(), "0/0"),
        (lambda g, lr: None, "returned None"),
        (lambda g, lr: adam_reference(g, lr).flatten(), "returned shape"),
        (lambda g, lr: adam_reference(g, 0.01), "right for lr=0.01 only"),  # the lr argument ignored
        (lambda g, lr: adam_reference(g.double(), lr), "in the gradient's dtype"),
        (lambda g, lr: g.mul_(-lr).div_(g.abs() / lr + 1e-8), "changed its input `g` in place"),
        (lambda g, lr: adam_reference(g, lr).tolist(), "must return a torch tensor"),
    ],
    ids=["sign", "sgd", "no-bias-correction", "eps-inside", "no-lr", "sign-only", "no-eps", "none", "shape",
         "hard-coded-lr", "float64", "in-place", "list"],
)
def test_adam_first_step_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_adam_first_step, wrong, hint)


def test_mc_variance_stderr_matches_the_spread_of_repeated_estimates():
    d, std, sigma_h, n, reps = 4, 0.7, 1.3, 2000, 400
    g = torch.Generator().manual_seed(11)
    w = torch.randn(reps, n, d, generator=g, dtype=torch.float64) * std
    h = torch.randn(reps, n, d, generator=g, dtype=torch.float64) * sigma_h
    estimates = (w * h).sum(-1).var(dim=1)
    # The std of 400 estimates is itself known to ~1/sqrt(2·399) ≈ 3.5% (a bit more for heavy tails): 15% is > 4 errors.
    assert abs(estimates.std().item() / checks.mc_variance_stderr(d, std, sigma_h, n) - 1) < 0.15
    assert abs(estimates.mean().item() - d * std**2 * sigma_h**2) < 5 * checks.mc_variance_stderr(d, std, sigma_h, n) / math.sqrt(reps)


# ------------------------------------------------------- an accepted answer runs the rest of its worksheet

WORKSHEET_OF = {  # checker -> (solution notebook, the learner's function it checks)
    "check_predicted_variance": ("02_variance_monte_carlo", "predict_reward_variance"),
    "check_mc_variance": ("02_variance_monte_carlo", "mc_reward_variance"),
    "check_formula_breaker": ("02_variance_monte_carlo", "hidden_states_that_break_the_formula"),
    "check_layer_init": ("03_layer_init", "layer_init"),
    "check_score_head_std": ("03_layer_init", "score_head_std"),
    "check_bradley_terry_loss": ("04_bradley_terry_loss", "bradley_terry_loss"),
    "check_bt_gradient": ("04_bradley_terry_loss", "bradley_terry_grad"),
    "check_relative_error": ("04_bradley_terry_loss", "relative_error"),
    "check_reward_gain_bias": ("06_reward_normalisation", "reward_gain_bias"),
    "check_normalise_on_reference": ("06_reward_normalisation", "normalise_on_reference"),
}
OTHER_STYLES = [(c, s, fn) for c, s, fn in ACCEPT if s != "reference" and c in WORKSHEET_OF]


@pytest.mark.parametrize("checker, style, fn", OTHER_STYLES, ids=[f"{c}-{s}" for c, s, _ in OTHER_STYLES])
def test_an_accepted_answer_runs_every_later_cell_of_its_worksheet(checker, style, fn, capsys):
    """Run the solution's code cells in order with the learner's function swapped for another accepted style."""
    import nbformat
    from pathlib import Path

    notebook, name = WORKSHEET_OF[checker]
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "solutions" / f"{notebook}.ipynb", as_version=4)
    namespace = {"__name__": "__worksheet__"}
    _contract.RECORDS.clear()  # the worksheet's scoreboard shows this run's checks only
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        exec(compile(cell.source, f"{notebook}.ipynb", "exec"), namespace)
        if f"def {name}(" in cell.source:
            namespace[name] = fn
    oks = {k: v for k, v in namespace.items() if k.startswith("ok_")}
    assert oks and all(v is True for v in oks.values()), oks  # every check passed, so every later cell ran
    assert "✗" not in capsys.readouterr().out


# =============================================================================================
# Worksheet 05, early stopping (rmlib.checks.sweep.check_early_stopping_step) — owned with worksheet 05.

from rmlib.checks.sweep import _ES_CASES, check_early_stopping_step  # noqa: E402


def es_reference(val_loss, steps, patience):
    best_i, best, waited = None, float("inf"), 0
    for i in range(len(val_loss)):
        if val_loss[i] < best:  # NaN is never lower: no improvement, and never the best
            best_i, best, waited = i, val_loss[i], 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_i is None:
        raise ValueError("no finite validation loss before the stop")
    return int(steps[best_i])


def es_with_tensors(val_loss, steps, patience):
    # Another correct form: the running minimum from +inf, and the first evaluation after `patience` without a new one.
    v = val_loss.nan_to_num(float("inf"))
    running = torch.cummin(v, 0).values
    improved = torch.cat([v[:1] < float("inf"), running[1:] < running[:-1]])
    idx = torch.arange(len(v))
    last_improvement = torch.cummax(torch.where(improved, idx, -1), 0).values
    since = idx - last_improvement  # evaluations since the last improvement (none yet: i + 1)
    stopped = (since >= patience).nonzero()
    end = stopped[0, 0].item() if len(stopped) else len(v) - 1
    if last_improvement[end] < 0:
        raise ValueError("no finite validation loss before the stop")
    return steps[last_improvement[end]]


def es_numpy(val_loss, steps, patience):
    # A third style: NumPy arrays, a NaN test spelled out, and an explicit "stop" index, float64.
    v, s = np.asarray(val_loss, dtype=np.float64), np.asarray(steps)
    best, since = -1, 0
    for i in range(len(v)):
        if not np.isnan(v[i]) and (best < 0 or v[i] < v[best]):
            best, since = i, 0
        else:
            since += 1
            if since == patience:
                break
    if best < 0:
        raise ValueError("every evaluation before the stop diverged")
    return int(s[best])


def test_early_stopping_accepts_the_reference_and_a_tensor_form(capsys):
    assert check_early_stopping_step(es_reference)
    assert check_early_stopping_step(es_with_tensors)
    assert check_early_stopping_step(es_numpy)
    assert "✓ early_stopping_step" in capsys.readouterr().out
    assert check_early_stopping_step(not_yet) is False


def _es_loop(val_loss, steps, patience, *, strict=True, reset=True, stop_after=None, margin=0.0):
    stop_after = patience if stop_after is None else stop_after
    best_i, waited, stop_i = None, 0, len(val_loss) - 1
    for i in range(len(val_loss)):
        best = float("inf") if best_i is None else val_loss[best_i]
        better = val_loss[i] < best - margin if strict else (val_loss[i] <= best and not math.isnan(val_loss[i]))
        if better:
            best_i = i
            waited = 0 if reset else waited
        else:
            waited += 1
            if waited >= stop_after:
                stop_i = i
                break
    return best_i, stop_i


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda v, s, p: _es_loop(v, s, p)[0], "index of the best evaluation"),
        (lambda v, s, p: int(s[_es_loop(v, s, p)[1]]), "step where training stops"),
        (lambda v, s, p: v[_es_loop(v, s, p)[0]].item(), "that is the best validation loss"),
        (lambda v, s, p: int(s[v.nan_to_num(float("inf")).argmin()]), "minimum over the whole run"),
        (lambda v, s, p: int(s[v.argmin()]), "torch.argmin over the whole run"),
        (lambda v, s, p: int(s[v.nan_to_num(-1.0).argmax()]), "highest"),
        (lambda v, s, p: int(s[_es_loop(v, s, p, stop_after=p + 1)[0]]), "one evaluation too long"),
        (lambda v, s, p: int(s[_es_loop(v, s, p, stop_after=max(p - 1, 1))[0]]), "one evaluation too early"),
        (lambda v, s, p: int(s[_es_loop(v, s, p, strict=False)[0]]), "on a tie"),
        (lambda v, s, p: int(s[_es_loop(v, s, p, reset=False)[0]]), "reset the patience counter"),
        (lambda v, s, p: int(s[-1]), "that is the last evaluation"),
        (lambda v, s, p: None, "returned None"),
        (lambda v, s, p: s[:2], "return one step"),
        (lambda v, s, p: 32, "expected"),
    ],
    ids=["index", "stop-step", "loss", "global-min", "torch-argmin", "argmax", "late", "early", "ties", "no-reset",
         "last", "none", "tensor", "constant"],
)
def test_early_stopping_rejects_wrong_answers(wrong, hint):
    fails_with(check_early_stopping_step, wrong, hint)


def test_early_stopping_probes_tell_every_wrong_answer_apart():
    # The hint is only honest if each wrong answer gives its own results on the probe curves.
    answers = {}
    for name, fn in [("ref", es_reference), ("index", lambda v, s, p: _es_loop(v, s, p)[0]),
                     ("late", lambda v, s, p: int(s[_es_loop(v, s, p, stop_after=p + 1)[0]])),
                     ("early", lambda v, s, p: int(s[_es_loop(v, s, p, stop_after=max(p - 1, 1))[0]])),
                     ("ties", lambda v, s, p: int(s[_es_loop(v, s, p, strict=False)[0]])),
                     ("no-reset", lambda v, s, p: int(s[_es_loop(v, s, p, reset=False)[0]])),
                     ("global-min", lambda v, s, p: int(s[v.nan_to_num(float("inf")).argmin()])),
                     ("stop", lambda v, s, p: int(s[_es_loop(v, s, p)[1]])), ("last", lambda v, s, p: int(s[-1]))]:
        answers[name] = tuple(fn(torch.tensor(c), torch.arange(len(c)) * 32, p) for c, p in _ES_CASES)
    assert len(set(answers.values())) == len(answers), answers


# =============================================================================================
# Issue 21: answers written to fool the checkers — careless, confused, gaming — and unusual right styles.

import numpy as np  # noqa: E402

from rmlib import checks as _checks  # noqa: E402


def test_a_finished_answer_raising_not_implemented_error_is_a_failure_not_a_stub(capsys):
    def guarded(d):  # a finished answer with a guard that raises NotImplementedError for some inputs
        if d > 1000:
            raise NotImplementedError("large heads later")
        return 1 / math.sqrt(d + 1)

    fails_with(checks.check_score_head_std, guarded, "raised NotImplementedError: large heads later")
    assert checks.RECORDS["score_head_std"]["status"] == "failed"

    def stub_with_docstring(d):
        "The score-head std."
        # YOUR CODE HERE
        raise NotImplementedError()

    assert checks.check_score_head_std(stub_with_docstring) is False
    assert checks.RECORDS["score_head_std"]["status"] == "not attempted"


def test_an_answer_calling_an_unfinished_task_is_told_which_one():
    def reward_gain_bias(ref):
        raise NotImplementedError

    def normalise(rewards, samples):
        gain, bias = reward_gain_bias(rewards.gather(1, samples))
        return gain * rewards + bias

    fails_with(checks.check_normalise_on_reference, normalise, "calls reward_gain_bias, which is still the stub")


@pytest.mark.parametrize("exc", [SystemExit(0), SystemExit("bye"), GeneratorExit()], ids=["exit-0", "exit-msg", "genexit"])
def test_system_exit_and_other_base_exceptions_become_a_rejection(exc):
    def leaves(*args):
        raise exc

    fails_with(checks.check_score_head_std, leaves, f"raised {type(exc).__name__}")
    fails_with(checks.check_reward_gain_bias, leaves, f"raised {type(exc).__name__}")  # inside a guard probe too


def test_keyboard_interrupt_still_stops_the_check():
    def interrupted(d):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checks.check_score_head_std(interrupted)


def test_changed_global_state_is_caught_and_undone():
    def float64_default(d):
        torch.set_default_dtype(torch.float64)
        return 1 / math.sqrt(d + 1)

    def numpy_draw(d):
        np.random.rand()
        return 1 / math.sqrt(d + 1)

    def grad_off(d):
        torch.set_grad_enabled(False)
        return 1 / math.sqrt(d + 1)

    np.random.seed(3)
    before = np.random.get_state()[1].copy()
    fails_with(checks.check_score_head_std, float64_default, "default dtype")
    assert torch.get_default_dtype() == torch.float32
    fails_with(checks.check_score_head_std, numpy_draw, "numpy's global random state")
    assert np.array_equal(np.random.get_state()[1], before)
    fails_with(checks.check_score_head_std, grad_off, "grad mode")
    assert torch.is_grad_enabled()


def test_probes_are_fresh_on_every_call_and_replayable(capsys, monkeypatch):
    monkeypatch.delenv(checks._contract.SEED_ENV, raising=False)  # RMLIB_CHECK_SEED would fix every call's seed
    seen = []

    def spy(d):
        seen.append(d)
        return 1 / math.sqrt(d + 1)

    assert checks.check_score_head_std(spy) and checks.check_score_head_std(spy)
    first, second = seen[: len(seen) // 2], seen[len(seen) // 2:]
    assert first[:6] == second[:6] and first[6:] != second[6:]  # fixed edge cases, then fresh widths
    seed = checks.RECORDS["score_head_std"]["seed"]
    seen.clear()
    checks.check_score_head_std(spy, seed=seed)
    checks.check_score_head_std(spy, seed=seed)
    assert seen[: len(seen) // 2] == seen[len(seen) // 2:] == second


def test_a_table_of_widths_does_not_pass():
    table = {d: 1 / math.sqrt(d + 1) for d in range(1, 200_001)}  # gaming: every width up to 2·10⁵ (fifth attack)
    for seed in range(5):  # two widths uniform on [3, 10⁹]: both inside the table with probability 4e-8
        fails_with(lambda fn: checks.check_score_head_std(fn, seed=seed), lambda d: table.get(d, 0.02),
                   r"expected 1/sqrt\(\d+\+1\)")


def test_a_failure_names_its_probe_seed_and_the_replay_call():
    table = {1: 1 / math.sqrt(2), 2: 1 / math.sqrt(3), 64: 1 / math.sqrt(65), 768: 1 / math.sqrt(769),
             4096: 1 / math.sqrt(4097), 5: 1 / math.sqrt(6)}
    fails_with(checks.check_score_head_std, lambda d: table.get(d, 0.02),
               r"probe seed \d+: check_score_head_std\(score_head_std, seed=\d+\) replays")


LOOKUP_VARIANCE = {(d, s, h): d * s**2 * h**2 for d, s, h in checks.variance._VARIANCE_GRID}
ES_LOOKUP = {tuple(c): p for c, p in _ES_CASES}


@pytest.mark.parametrize(
    "checker, fn, hint",
    [
        # gaming: a table of the visible probes
        ("check_predicted_variance", lambda d, s, h: LOOKUP_VARIANCE.get((d, s, h), 1.0), "expected d σ_w² σ_h²"),
        ("check_score_head_std", lambda d: 1 / math.sqrt(d + 1) if d in (1, 2, 5, 64, 768, 4096) else 0.1, "expected"),
        ("check_formula_breaker", lambda n, d, g: (offset_states(n, d, g) if (n, d) in ((20_000, 64), (12_000, 5))
                                                   else torch.randn(n, d, generator=g)), "formula holds"),
        ("check_early_stopping_step", lambda v, s, p: es_reference(v, s, p) if tuple(v.tolist()) in ES_LOOKUP or
         any(math.isnan(x) for x in v.tolist()) and len(v) == 8 else int(s[-1]), "expected"),
        # careless: the NaN in relative_error hidden by Python's max / nan_to_num
        ("check_relative_error", lambda x, y: max(((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).tolist()),
         "NaN"),
        ("check_relative_error", lambda x, y: ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).nan_to_num().max(),
         "NaN"),
        # confused: loglog_slope filtering on x only, or dropping the first pair
        ("check_loglog_slope", lambda x, y: _fit(x[x > 0].double().log(), y[x > 0].double().log())[0],
         "leave out every pair"),
        ("check_loglog_slope", lambda x, y: slope_reference(x[1:].clamp_min(1e-300), y[1:].clamp_min(1e-300)), "expected"),
        # confused: early stopping that counts rises against the previous evaluation
        ("check_early_stopping_step", lambda v, s, p: es_against_previous(v, s, p), "expected"),
        ("check_early_stopping_step", lambda v, s, p: es_nan_resets(v, s, p), "expected"),
    ],
    ids=["variance-lookup", "std-lookup", "breaker-special-cased", "es-lookup", "relerr-python-max", "relerr-nan-to-num",
         "slope-x-only", "slope-drop-first", "es-previous", "es-nan-resets"],
)
def test_gaming_careless_and_confused_answers_fail(checker, fn, hint):
    fails_with(getattr(checks, checker), fn, hint)


def es_nan_resets(val_loss, steps, patience):
    best, waited = 0, 0
    for i in range(1, len(val_loss)):
        if val_loss[i] < val_loss[best]:
            best, waited = i, 0
        elif math.isnan(val_loss[i]):
            waited = 0  # a diverged evaluation wrongly treated as a fresh start
        else:
            waited += 1
            if waited >= patience:
                break
    return int(steps[best])


def es_against_previous(val_loss, steps, patience):
    best, waited = 0, 0
    for i in range(1, len(val_loss)):
        if val_loss[i] < val_loss[best]:
            best = i
        if val_loss[i] < val_loss[i - 1]:
            waited = 0
        else:
            waited += 1
            if waited >= patience:
                break
    return int(steps[best])


def mc_plugin(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return d * w.var().item() * h.var().item()


def mc_products(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return d * (w * h).var().item()


def mc_calibrated_noise(d, std, sigma_h, n, generator):
    f = d * std**2 * sigma_h**2
    return f + math.sqrt((2 * d * d + 6 * d) / n) * std**2 * sigma_h**2 * torch.randn(1, generator=generator).item()


def mc_normal_theory(d, std, sigma_h, n, generator):  # the formula times a χ²_{n−1}/(n−1) draw
    return d * std**2 * sigma_h**2 * torch.randn(n - 1, generator=generator, dtype=torch.float64).pow(2).mean().item()


def mc_capped(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h, min(n, 50_000), generator)


def mc_twice_n(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h, 2 * n, generator)


def mc_half_n(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h, max(n // 2, 2), generator)


def mc_floored(d, std, sigma_h, n, generator):
    return max(mc_reference(d, std, sigma_h, n, generator), 0.5 * d * std**2 * sigma_h**2)


def mc_capped_above(d, std, sigma_h, n, generator):
    return min(mc_reference(d, std, sigma_h, n, generator), 2 * d * std**2 * sigma_h**2)


def mc_divided_by_n(d, std, sigma_h, n, generator):
    return mc_reference(d, std, sigma_h, n, generator) / n


@pytest.mark.parametrize(
    "fn, hint",
    # plug-in 0.17, products 0.24: measured on the checker's 40-generator pilot, to ±12% (products printed
    # 0.17–0.19 on 20 of 400 probe seeds, so its pattern allows 0.1x too)
    [(mc_plugin, r"ratio 0\.[12]"), (mc_products, r"ratio 0\.[123]"), (mc_calibrated_noise, "never negative"),
     (mc_normal_theory, r"ratio 0\.[345]"), (mc_capped, "no cap on the sample size"),
     (mc_divided_by_n, r"but theory says"), (mc_twice_n, r"ratio 0\.[67]"), (mc_half_n, r"ratio 1\.[345]"),
     (mc_floored, "no floor, cap or clip"), (mc_capped_above, "no floor, cap or clip")],
    ids=["plug-in", "d-times-product-variance", "formula-plus-calibrated-noise", "formula-times-chi2", "capped-n",
         "divided-by-n", "twice-n", "half-n", "floored-at-half-the-formula", "capped-at-twice-the-formula"],
)
def test_mc_variance_rejects_what_is_not_a_sample_variance(fn, hint):
    with pytest.raises(AssertionError, match=hint) as info:
        checks.check_mc_variance(fn)
    assert "reused" not in str(info.value)  # no evidence of a shared head: no such hint


def li_private_entropy(layer, std):
    g = torch.Generator()
    g.seed()  # OS entropy: differs every call, ignores torch.manual_seed
    nn.init.normal_(layer.weight, std=std, generator=g)
    return layer


def li_linear_only(layer, std):
    if isinstance(layer, nn.Linear):
        nn.init.normal_(layer.weight, std=std)
    return layer


@pytest.mark.parametrize(
    "fn, hint",
    [(li_private_entropy, "do not come from torch's global generator"), (li_linear_only, "left the weight unchanged")],
    ids=["private-entropy-generator", "skips-embedding"],
)
def test_layer_init_reproducibility_and_honest_hints(fn, hint):
    with pytest.raises(AssertionError, match=hint) as info:
        checks.check_layer_init(fn)
    assert "use its std argument" not in str(info.value)


def test_bt_gradient_rejects_central_finite_differences():
    def finite_differences(c, r):
        h, n = 1e-5, c.numel()
        f = lambda c, r: F.softplus(r - c).mean()  # noqa: E731
        g = torch.stack([(f(c + h * e, r) - f(c - h * e, r)) / (2 * h) for e in torch.eye(n, dtype=c.dtype)])
        return g, -g

    fails_with(checks.check_bt_gradient, finite_differences, r"float64 pairs: relative error .*a right formula gives < 2e-12")


def test_adam_first_step_accepts_eps_as_a_float32_tensor_and_reports_nan_only_with_evidence():
    assert checks.check_adam_first_step(lambda g, lr: -lr * g / (g.abs() + torch.tensor(1e-8)))

    def bias_corrected_with_t0(grad, lr, b1=0.9, b2=0.999, t=0):
        m_hat, v_hat = (1 - b1) * grad / (1 - b1**t), (1 - b2) * grad**2 / (1 - b2**t)
        return -lr * m_hat / (v_hat.sqrt() + 1e-8)

    with pytest.raises(AssertionError) as info:
        checks.check_adam_first_step(bias_corrected_with_t0)
    assert "where the gradient is 0" not in str(info.value) and "NaN or inf at" in str(info.value)


def gb_float32(ref):
    r = ref.detach().flatten()
    if r.numel() < 2 or not torch.isfinite(r).all():
        raise ValueError("bad")
    mean, std = r.mean().item(), r.std(correction=0).item()
    if std <= 1e-6 * max(1.0, abs(mean)):
        raise ValueError("zero variance")
    return 1 / std, -mean / std


def gb_guard(check_finite=lambda r: torch.isfinite(r).all(), zero=lambda m, s: s <= 1e-6 * max(1.0, abs(m))):
    def answer(ref):
        r = ref.detach().double().flatten()
        if r.numel() < 2 or not check_finite(r):
            raise ValueError("bad")
        mean, std = r.mean().item(), r.std(correction=0).item()
        if zero(mean, std):
            raise ValueError("zero variance")
        return 1 / std, -mean / std
    return answer


@pytest.mark.parametrize(
    "fn, hint",
    [(gb_float32, "Compute the mean and std in float64"),
     (gb_guard(check_finite=lambda r: torch.isfinite(r[:10]).all()), "not only the first few"),
     (gb_guard(zero=lambda m, s: s <= 1e-6 * abs(m)), "1e-9 around 0"),
     (gb_guard(zero=lambda m, s: s < 1e-6 * abs(m)), "fifty rewards all equal to 0.0"),
     (gb_guard(zero=lambda m, s: s < 1e-6 * abs(m) or s < 1e-12), "1e-9 around 0"),
     (gb_guard(zero=lambda m, s: s == 0), "1e-9 around 0")],
    ids=["float32-computation", "nan-guard-on-first-ten", "relative-only-threshold", "strict-relative-threshold", "absolute-floor-too-small",
         "exact-zero"],
)
def test_reward_gain_bias_guards_are_probed_where_they_break(fn, hint):
    fails_with(checks.check_reward_gain_bias, fn, hint)


def test_normalise_no_spread_guard_must_look_at_rewards_not_indices():
    def guard_on_indices(rewards, samples):
        if (samples == samples[0, 0]).all():
            raise ValueError("no spread")
        ref = rewards.gather(1, samples)
        return (rewards - ref.mean()) / ref.std(correction=0)

    fails_with(checks.check_normalise_on_reference, guard_on_indices, "the other responses differ")


def test_a_loss_that_modifies_its_inputs_is_told_so_not_that_its_value_is_wrong():
    def in_place(c, r):
        return F.softplus(r.sub_(c.detach()) if not r.requires_grad else r - c).mean()

    def mutating(c, r):
        c.data.mul_(1.0 + 1e-3)
        return F.softplus(r - c).mean()

    fails_with(checks.check_bradley_terry_loss, mutating, "changed its input `c` in place")


def _library_module():
    import types

    lib = types.ModuleType("a_library")  # its own globals: not the answer's code
    exec("import sys\ndef first_import(value):\n    sys.addaudithook(lambda event, args: None)\n    return value\n",
         vars(lib))
    return lib


def a_library_adds_an_audit_hook(value):
    return _library_module().first_import(value)


def warns_then(value):
    import warnings

    warnings.warn("a learner's own warning", stacklevel=3)  # attributed two frames up: the checker's wrapper
    return value


UNUSUAL_RIGHT = [
    ("check_early_stopping_step", lambda v, s, p: np.int64(es_reference(v, s, p))),
    ("check_early_stopping_step", lambda v, s, p: np.array([es_reference(v, s, p)])),
    ("check_score_head_std", lambda d: np.array([1 / math.sqrt(d + 1)])),
    ("check_score_head_std", lambda d: torch.tensor(d + 1.0, dtype=torch.float64).rsqrt()),
    ("check_score_head_std", lambda d: np.float32(1 / math.sqrt(d + 1))),
    ("check_predicted_variance", lambda d, s, h: np.float32(d * s * s * h * h)),
    ("check_relative_error", lambda x, y: np.array(((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).max().item())),
    ("check_bt_gradient", bt_grad_via_sigmoid_delta),
    ("check_mc_variance", mc_mean_square),  # rejected at n = 2 before its shape was accepted (fourth attack)
    ("check_score_head_std", lambda d: in_a_thread(lambda: 1 / math.sqrt(d + 1))),  # Thread.start waits (fifth)
    ("check_score_head_std", lambda d: warns_then(1 / math.sqrt(d + 1))),  # credited to the watch's frame (sixth)
    ("check_score_head_std", lambda d: decimal.Decimal(d + 1).sqrt() ** -1),  # a number, as in difference_std
    ("check_score_head_std", lambda d: a_library_adds_an_audit_hook(1 / math.sqrt(d + 1))),  # filelock on 3.12+
]


@pytest.mark.parametrize("checker, fn", UNUSUAL_RIGHT, ids=[f"{c}-{i}" for i, (c, _) in enumerate(UNUSUAL_RIGHT)])
def test_unusual_right_styles_pass(checker, fn, capsys):
    assert getattr(checks, checker)(fn) is True


def test_level_three_hints_can_be_switched_off_for_graded_work(monkeypatch, capsys):
    monkeypatch.setenv("RMLIB_HINT_LEVEL_MAX", "2")
    checks.hint("early_stopping_step", 3)
    out = capsys.readouterr().out
    assert "hint 2/2" in out and "switched level 3 off" in out and "break" not in out
    with pytest.raises(AssertionError) as info:
        checks.check_score_head_std(lambda d: 0.02)
    assert "levels 2–3" not in str(info.value) and "level 2 says more" in str(info.value)
    monkeypatch.delenv("RMLIB_HINT_LEVEL_MAX")
    checks.hint("early_stopping_step", 3)
    code = capsys.readouterr().out.split("the formula:\n", 1)[1].rsplit("\n  (that is", 1)[0]
    compile(textwrap_dedent(code), "hint", "exec")  # the printed solution is valid, indented Python


def textwrap_dedent(text):
    import textwrap

    return "def f(val_loss, steps, patience):\n" + textwrap.indent(textwrap.dedent(text), "    ")


def test_records_are_signed_only_under_the_graders_key(monkeypatch, capsys):
    monkeypatch.setattr(_contract, "_KEY", b"")
    checks.check_score_head_std(score_head_std)
    assert "signature" not in checks.RECORDS["score_head_std"]
    monkeypatch.setattr(_contract, "_KEY", b"per-run key")
    checks.check_score_head_std(score_head_std)
    record = checks.RECORDS["score_head_std"]
    assert _contract.record_is_signed_by(record, b"per-run key")
    assert not _contract.record_is_signed_by({**record, "status": "failed"}, b"per-run key")


# =============================================================================================
# Issue 21, second attack: new wrong answers for what the first round left open. Each group is one mechanism.

import functools  # noqa: E402

import rmlib  # noqa: E402
from rmlib.checks import sweep as _sweep  # noqa: E402


def gb_guard_abs(threshold, relative=0.0):
    """A right reward_gain_bias except for its zero-spread guard: σ ≤ threshold (absolute), or ≤ relative·|μ|."""
    return gb_guard(zero=lambda m, s: s <= threshold or s <= relative * abs(m))


# 1. reward_gain_bias: an absolute guard does not scale with the rewards (probed at μ = 1000 and μ ≈ 5e4 with a
#    one-float32-step spread; see rmlib.checks.normalisation for the derivation of the relative guard).
ABSOLUTE_GUARDS = [gb_guard_abs(1e-6), gb_guard_abs(1e-7), gb_guard_abs(5e-6), gb_guard_abs(1e-6, relative=1e-9),
                   gb_guard_abs(1e-4)]


@pytest.mark.parametrize("fn", ABSOLUTE_GUARDS, ids=["abs-1e-6", "abs-1e-7", "abs-5e-6", "abs-1e-6-or-rel-1e-9",
                                                     "abs-1e-4"])
def test_reward_gain_bias_rejects_absolute_zero_spread_guards(fn):
    fails_with(checks.check_reward_gain_bias, fn, "one float32 step higher.*tolerance relative to the rewards' scale")


def test_the_one_ulp_probe_is_rounding_at_its_scale_and_only_an_absolute_guard_misses_it():
    for mu in (1000.0, 32768.0, 65535.0):  # the fixed probe and the ends of the fresh one
        r = torch.full((200,), mu, dtype=torch.float32)
        r[::2] = torch.nextafter(r[::2], torch.tensor(float("inf")))
        mean, sigma = r.double().mean().item(), r.double().std(correction=0).item()
        assert 0 < sigma <= 2**-24 * 2 * abs(mean)  # half an ulp: at most 2^-23 of the mean
        assert sigma <= 1e-6 * max(1.0, abs(mean))  # the relative guard raises
        assert sigma > 1e-6  # an absolute 1e-6 does not
    # ... and at the fresh probe's scale a one-step spread (2^-9 = 2.0e-3) exceeds the std-1e-3 probe's σ, so no
    # absolute threshold passes both.
    assert torch.nextafter(torch.tensor(32768.0), torch.tensor(1e9)).item() - 32768.0 == 2**-8


# 2. score_head_std in half precision: accepted before, then worksheet 03's 1e-6 comparison failed.
@pytest.mark.parametrize("fn, dtype", [
    (lambda d: torch.tensor(d + 1.0, dtype=torch.bfloat16).rsqrt(), "bfloat16"),
    (lambda d: torch.tensor(d + 1.0, dtype=torch.float16).rsqrt(), "float16"),
    (lambda d: np.float16(1 / math.sqrt(d + 1)), "float16"),
    (lambda d: torch.tensor(1 / math.sqrt(d + 1)).bfloat16(), "bfloat16"),
    (lambda d: torch.tensor([1 / math.sqrt(d + 1)], dtype=torch.float16), "float16"),
], ids=["bf16-rsqrt", "fp16-rsqrt", "numpy-fp16", "cast-to-bf16", "fp16-one-element"])
def test_score_head_std_in_half_precision_is_rejected_naming_the_dtype(fn, dtype):
    fails_with(checks.check_score_head_std, fn, f"returned a {dtype} number: {dtype} keeps too few digits")


# 3. One-line wrappers around rmlib's own implementation of the task.
def li_wraps_rmlib(layer, std):
    return rmlib.init.layer_init(layer, std)


def li_imports_inside(layer, std):
    from rmlib import layer_init as library_version

    return library_version(layer, std)


def li_through_a_helper(layer, std):
    return _helper_that_wraps(layer, std)


def _helper_that_wraps(layer, std):
    return rmlib.layer_init(layer, std)


def shs_wraps(hidden_size):
    return rmlib.score_head_std(hidden_size)


def bt_wraps(chosen, rejected):
    return rmlib.losses.bradley_terry_loss(chosen, rejected)


def bt_centred_without_penalty(chosen, rejected):
    return rmlib.normalize.centred_bt_loss(chosen, rejected, coefficient=0.0)


def relerr_wraps(x, y):
    return rmlib.checks.relative_error(x, y)


def adam_wraps(grad, lr):
    p = torch.zeros_like(grad)
    rmlib.theory.adam_step(p, grad, torch.zeros_like(grad), torch.zeros_like(grad), 1, lr)
    return p


def gb_fit_classmethod(ref):
    fit = rmlib.normalize.RewardNormalizer.fit
    norm = fit(ref)
    return norm.gain, norm.bias


def norm_through_own_gain_bias(rewards, samples):  # its own Task 1 answer is a wrapper: caught through it
    gain, bias = gb_library(rewards.gather(1, samples))
    return gain * rewards + bias


def mc_wraps(d, std, sigma_h, n, generator):
    return rmlib.theory.sample_initial_rewards(d, std, n, sigma_h, generator=generator).var().item()


WRAPPERS = [
    ("check_layer_init", li_wraps_rmlib, "layer_init"),
    ("check_layer_init", li_imports_inside, "layer_init"),
    ("check_layer_init", li_through_a_helper, "layer_init"),
    ("check_layer_init", functools.partial(rmlib.init.layer_init), "layer_init"),
    ("check_score_head_std", shs_wraps, "score_head_std"),
    ("check_score_head_std", lambda d: rmlib.init.score_head_std(d), "score_head_std"),
    ("check_bradley_terry_loss", bt_wraps, "bradley_terry_loss"),
    ("check_bradley_terry_loss", bt_centred_without_penalty, "centred_bt_loss"),
    ("check_relative_error", relerr_wraps, "relative_error"),
    ("check_adam_first_step", adam_wraps, "adam_step"),
    ("check_predicted_variance", lambda d, s, h: rmlib.theory.isotropic_reward_variance(d, s, h), "isotropic_reward_variance"),
    ("check_predicted_variance", lambda d, s, h: rmlib.theory.predicted_reward_variance(d, s, h), "predicted_reward_variance"),
    ("check_mc_variance", mc_wraps, "sample_initial_rewards"),
    ("check_reward_gain_bias", gb_fit_classmethod, "RewardNormalizer"),
    ("check_normalise_on_reference", norm_through_own_gain_bias, "RewardNormalizer"),
]


@pytest.mark.parametrize("checker, fn, own", WRAPPERS, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(WRAPPERS)])
def test_an_answer_that_calls_rmlibs_own_implementation_is_rejected(checker, fn, own):
    fails_with(getattr(checks, checker), fn, f"calls rmlib's own {own}; write it yourself")


def mc_with_the_worksheets_helper(d, std, sigma_h, n, generator):  # worksheet 02 imports rmlib.theory for this
    r = (torch.randn(n, d, generator=generator) * std * torch.randn(n, d, generator=generator) * sigma_h).sum(-1)
    var, _ = rmlib.theory.variance_with_stderr(r)
    return var


@pytest.mark.parametrize("checker, fn", [
    ("check_mc_variance", mc_with_the_worksheets_helper),
    ("check_formula_breaker", offset_states),  # rmlib.theory.sample_hidden_states: a sampler, not the answer
    ("check_normalise_on_reference", norm_reference),  # calls the notebook's own reward_gain_bias
    ("check_layer_init", lambda layer, std: (torch.nn.init.normal_(layer.weight, 0.0, std), layer)[1]),
], ids=["mc-variance-with-stderr", "breaker-sample-hidden-states", "normalise-own-task-1", "layer-init-lambda"])
def test_helpers_the_worksheets_provide_stay_allowed(checker, fn, capsys):
    assert getattr(checks, checker)(fn) is True


def test_passing_rmlibs_function_itself_is_left_to_the_gradebook(capsys):
    # The checkers' own tests pass the library's functions as the reference; the gradebook grades such a record
    # "error" (the function was not defined in the notebook: tools.grade._own_function).
    assert checks.check_score_head_std(rmlib.score_head_std)
    assert checks.RECORDS["score_head_std"]["function"] == "rmlib.init.score_head_std"


# 4. layer_init that rescales its draws to exactly the asked std.
def li_rescaled(layer, std):
    with torch.no_grad():
        torch.nn.init.normal_(layer.weight, 0.0, std)
        if std > 0:
            layer.weight.mul_(std / layer.weight.std())
    return layer


def li_standardised(layer, std):
    with torch.no_grad():
        w = torch.randn_like(layer.weight)
        layer.weight.copy_((w - w.mean()) / w.std(correction=0) * std)
    return layer


def li_rescaled_float64(layer, std):
    with torch.no_grad():
        w = torch.randn(layer.weight.shape, dtype=torch.float64)
        layer.weight.copy_(w / w.std() * std)
    return layer


@pytest.mark.parametrize("fn", [li_rescaled, li_standardised, li_rescaled_float64],
                         ids=["rescaled", "standardised-population", "rescaled-in-float64"])
def test_layer_init_rescaled_to_the_exact_std_is_rejected(fn):
    fails_with(checks.check_layer_init, fn, "exactly the asked std in every layer")


def test_the_rescaling_tell_has_a_derived_false_alarm_rate():
    from rmlib.checks.layer_init import RESCALE_TOL

    # P(|s/σ − 1| < t) for the sample std of n normal draws, s/σ − 1 ≈ N(0, 1/(2n)); twice for two std conventions.
    p = [2 * 2 * RESCALE_TOL * math.sqrt(2 * n) / math.sqrt(2 * math.pi) for n in (200_000, 210_000, 100_000)]
    assert math.prod(p) < 1e-9
    # A rescale lands far inside the tolerance: float32 rounding of w·std/w.std() (measured ≤ 1e-7).
    w = torch.randn(200_000, generator=torch.Generator().manual_seed(0)) * 0.37
    v = (w * (0.37 / w.std())).double()
    assert abs(v.std().item() / 0.37 - 1) < RESCALE_TOL / 5


# 5. Hints that named a mistake the answer did not make.
def li_undefined_generator(layer, std):
    torch.nn.init.normal_(layer.weight, mean=0.0, std=std, generator=gen)  # noqa: F821 (gen is not defined here)
    return layer


def li_std_as_text(layer, std):
    torch.nn.init.normal_(layer.weight, mean=0.0, std=str(std))
    return layer


@pytest.mark.parametrize("fn, says", [(li_undefined_generator, "NameError: name 'gen'"),
                                      (li_std_as_text, "must be float, not str")], ids=["name-error", "std-as-text"])
def test_a_crash_unrelated_to_the_bias_is_not_blamed_on_the_bias(fn, says):
    with pytest.raises(AssertionError, match=says) as info:
        checks.check_layer_init(fn)
    assert "don't touch the bias" not in str(info.value)


def test_a_loss_computed_in_float32_is_told_so_not_that_it_has_an_eps():
    def float32_inside(c, r):
        return F.softplus((r - c).float()).mean().to(c.dtype)

    with pytest.raises(AssertionError, match="computed in float32") as info:
        checks.check_bradley_terry_loss(float32_inside)
    assert "eps" not in str(info.value)

    def scaled(c, r):  # close but off by a factor: no eps, no float32, and the hint does not claim either
        return F.softplus(r - c).mean() * (1 + 1e-8)

    with pytest.raises(AssertionError, match="not to float64 precision") as info:
        checks.check_bradley_terry_loss(scaled)
    assert "computed in float32" not in str(info.value)


def test_a_crash_on_the_small_spread_probe_is_not_called_a_large_threshold():
    def crashes_on_small_spreads(ref):
        r = ref.detach().double().flatten()
        if r.numel() < 2 or not torch.isfinite(r).all():
            raise ValueError("bad")
        m, s = r.mean().item(), r.std(correction=0).item()
        if s <= 1e-6 * max(1.0, abs(m)):
            raise ValueError("no spread")
        if s < 0.01:
            return [1 / s][1], 0.0  # an IndexError on small spreads
        return 1 / s, -m / s

    with pytest.raises(AssertionError, match="IndexError") as info:
        checks.check_reward_gain_bias(crashes_on_small_spreads)
    assert "threshold" not in str(info.value)


# 7. Early stopping: NaN never counts as a best, not even as the first evaluation.
def es_first_is_best(val_loss, steps, patience):  # the previous reference: a NaN first evaluation stays the best
    best, waited = 0, 0
    for i in range(1, len(val_loss)):
        if val_loss[i] < val_loss[best]:
            best, waited = i, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return int(steps[best])


def es_step_zero_when_nothing_finite(val_loss, steps, patience):  # right, but returns step 0 instead of raising
    try:
        return es_reference(val_loss, steps, patience)
    except ValueError:
        return int(steps[0])


def es_skips_leading_nans(val_loss, steps, patience):  # leading NaNs wrongly do not use up patience
    start = next((i for i, v in enumerate(val_loss.tolist()) if v == v), len(val_loss))
    if start == len(val_loss):
        raise ValueError("every evaluation is NaN")
    return es_reference(val_loss[start:], steps[start:], patience)


@pytest.mark.parametrize("fn, hint", [
    (es_first_is_best, "NaN never counts as a best, not even the first"),
    (es_step_zero_when_nothing_finite, "instead of raising ValueError: no evaluation before training stops"),
    (es_skips_leading_nans, "expected|instead of raising ValueError"),
], ids=["first-is-best", "step-zero-without-a-best", "leading-nans-free"])
def test_early_stopping_nan_first_is_never_the_best(fn, hint):
    fails_with(check_early_stopping_step, fn, hint)


def test_the_reference_and_the_checker_agree_on_a_nan_first_curve():
    curve, patience = [float("nan"), 0.60, 0.55, 0.58, 0.50, 0.61, 0.62, 0.63, 0.45], 3
    steps = [32 * i for i in range(len(curve))]
    assert _sweep._early_stopping_reference(curve, steps, patience)[0] == 4  # 0.50: the first NaN is no best
    assert es_reference(torch.tensor(curve), torch.tensor(steps), patience) == 128
    assert repr((curve, patience)) in map(repr, _sweep._ES_CASES)  # repr: NaN != NaN
    for curve, patience in _sweep._ES_NO_BEST:
        assert _sweep._early_stopping_reference(curve, [32 * i for i in range(len(curve))], patience)[0] is None
        with pytest.raises(ValueError):
            es_reference(torch.tensor(curve), torch.arange(len(curve)) * 32, patience)


def test_a_capped_estimate_is_rejected_on_every_probe_seed():
    # Capped at 2·Var(r), the estimate used to pass the tail test whenever its mean fell under 2/3 (4 seeds in 40);
    # the atom the cap leaves (~12% of the n = 3 estimates on one value) is caught whatever the seed.
    for seed in range(8):
        with pytest.raises(AssertionError, match="no floor, cap or clip"):
            checks.check_mc_variance(mc_capped_above, seed=seed)


def test_a_right_estimate_repeats_no_value_at_n_3():
    g = torch.Generator().manual_seed(3)
    ests = torch.tensor([mc_reference(1, 1.0, 1.0, 3, g) for _ in range(1000)], dtype=torch.float64)
    assert ests.unique(return_counts=True)[1].max() <= 2  # the checker's limit is 10


# --------------------------------------------------------------------------- answers that defeat the check itself


def test_an_answer_that_disarms_the_checker_through_the_stack_fails_and_the_checker_is_restored():
    import inspect

    from rmlib.checks import layer_init as module

    def score_head_std(d):  # gaming: find the checker's module on the stack and make _fail a no-op
        for frame in inspect.stack():
            if "_fail" in frame.frame.f_globals and frame.frame.f_globals.get("__name__", "").startswith("rmlib.checks"):
                frame.frame.f_globals["_fail"] = lambda *a, **k: None
        return 0.02

    fail = module._fail
    with pytest.raises(AssertionError, match="changed the checker itself"):
        checks.check_score_head_std(score_head_std)
    assert module._fail is fail and _contract._fail is fail
    checks.check_score_head_std(lambda d: 1 / math.sqrt(d + 1))  # the checker works again afterwards


def test_in_a_notebook_the_check_cell_must_pass_the_function_the_worksheet_names(monkeypatch):
    import __main__

    def right(d):
        return 1 / math.sqrt(d + 1)

    monkeypatch.setattr(_contract, "_in_kernel", lambda: True)
    monkeypatch.setattr(__main__, "score_head_std", lambda d: 0.02, raising=False)  # the answer cell, still wrong
    with pytest.raises(AssertionError, match="checks your function `score_head_std`; it was given another"):
        checks.check_score_head_std(right)  # gaming: the check cell rewritten to check a correct helper
    monkeypatch.setattr(__main__, "score_head_std", right)
    assert checks.check_score_head_std(right)  # the notebook's own function: checked as usual


@pytest.mark.parametrize("style", ["grad", "vjp", "alias"])
def test_a_gradient_from_torch_func_is_not_by_hand(style):
    import torch.func

    from torch.func import vjp as pullback

    def by_func(chosen, rejected):  # gaming: torch.func's transforms run under inference mode
        loss = lambda c, r: F.softplus(r - c).mean()  # noqa: E731
        if style == "grad":
            return torch.func.grad(loss, argnums=(0, 1))(chosen, rejected)
        _, back = (torch.func.vjp if style == "vjp" else pullback)(loss, chosen, rejected)
        return back(torch.ones(()))

    with pytest.raises(AssertionError, match="autograd under another name"):
        checks.check_bt_gradient(by_func)


# The watch while an answer runs: what bytecode cannot see (a name computed at run time, the stack).

def test_rmlib_reached_by_a_computed_name_is_not_written_by_hand():
    import rmlib.theory

    def predict_reward_variance(d, std, sigma_h):  # gaming: no name in the bytecode leads to rmlib's function
        return getattr(rmlib.theory, "isotropic_" + "reward_variance")(d, std, sigma_h)

    with pytest.raises(AssertionError, match="calls rmlib's own isotropic_reward_variance"):
        checks.check_predicted_variance(predict_reward_variance)


def test_a_caught_watch_still_fails():
    import importlib

    def score_head_std(hidden_size):  # gaming: import by computed name, and swallow anything that goes wrong
        try:
            return getattr(importlib.import_module("rmlib." + "init"), "score_head_std")(hidden_size)
        except BaseException:
            return (hidden_size + 1) ** -0.5

    with pytest.raises(AssertionError, match="calls rmlib's own score_head_std"):
        checks.check_score_head_std(score_head_std)


@pytest.mark.parametrize("how", ["inspect.stack", "sys._getframe", "unhook"])
def test_an_answer_that_reads_the_checkers_stack_fails(how):
    import inspect
    import sys

    def std_for_unit_variance(d, sigma_h):  # gaming: take the checker's expected value from its frames
        if how == "unhook":
            sys.setprofile(None)
        frames = [f.frame for f in inspect.stack()] if how == "inspect.stack" else []
        if how == "sys._getframe":
            f = sys._getframe()
            while f is not None:
                frames.append(f)
                f = f.f_back
        for frame in frames:
            right = frame.f_locals.get("right")
            if callable(right):
                return right(d, sigma_h)
        return (d * sigma_h**2 + 1) ** -0.5

    with pytest.raises(AssertionError, match="calls sys.(_getframe|setprofile)"):
        checks.check_std_for_unit_variance(std_for_unit_variance)


def test_the_watch_puts_a_profiler_back_and_lets_right_answers_through():
    import sys

    seen = []
    profiler = lambda frame, event, arg: seen.append(event)  # noqa: E731  (a teacher's own profiler, say)
    sys.setprofile(profiler)
    try:
        assert checks.check_score_head_std(lambda d: (d + 1) ** -0.5)
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert seen  # the profiler saw the checker's own work, outside the answer's calls


# Hints that named the wrong mistake (student attack, issue 21): each now names the one made.

def es_nan_improves(val_loss, steps, patience):  # `not loss >= best` is True for NaN: a NaN becomes the best
    best, best_loss, waited = None, math.inf, 0
    for i, v in enumerate(val_loss.tolist()):
        if not v >= best_loss:
            best, best_loss, waited = i, v, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return int(steps[best])


def es_nan_skipped(val_loss, steps, patience):  # a NaN evaluation neither improves nor uses up patience
    best, best_loss, waited = None, math.inf, 0
    for i, v in enumerate(val_loss.tolist()):
        if v != v:
            continue
        if v < best_loss:
            best, best_loss, waited = i, v, 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best is None:
        raise ValueError("no finite validation loss")
    return int(steps[best])


@pytest.mark.parametrize("fn, hint", [(es_nan_improves, "count a NaN evaluation as an improvement"),
                                      (es_nan_skipped, "you skip NaN evaluations")], ids=["nan-improves", "nan-skipped"])
def test_early_stopping_names_the_nan_mistake(fn, hint):
    fails_with(check_early_stopping_step, fn, hint)


@pytest.mark.parametrize("narrow", [lambda x: torch.tensor(x), np.float32], ids=["torch.tensor", "np.float32"])
def test_reward_gain_bias_returned_in_float32_is_told_to_return_floats(narrow):
    def reward_gain_bias(reference):  # computed in float64, handed back in float32
        r = reference.double()
        mean, std = r.mean().item(), r.std(correction=0).item()
        if r.numel() < 2 or not math.isfinite(std) or std <= 1e-6 * max(1.0, abs(mean)):
            raise ValueError("no usable spread")
        return narrow(1 / std), narrow(-mean / std)

    with pytest.raises(AssertionError, match=r"returned float32 values.*return Python floats") as info:
        checks.check_reward_gain_bias(reward_gain_bias)
    assert "reference.double()" not in str(info.value)  # it already computes in float64


def test_an_outlier_that_keeps_the_formula_is_not_told_its_mean_is_zero():
    def hidden_states_that_break_the_formula(n, d, generator):  # one huge row: heavy tail, same formula
        h = torch.randn(n, d, generator=generator)
        h[0, 0] = 1e6
        return h

    with pytest.raises(AssertionError, match="an outlier raises σ_h² as much as E‖h‖²") as info:
        checks.check_formula_breaker(hidden_states_that_break_the_formula)
    assert "agrees with" not in str(info.value) and "Their mean is ≈ 0" not in str(info.value)


def test_formula_plus_calibrated_noise_is_not_told_it_has_a_cap():
    def mc_reward_variance(d, std, sigma_h, n, generator):  # gaming: the formula times a chi-square whose degrees
        k = max(2, round(n * d / (d + 3)))  # of freedom match the spread of a real estimate (kurtosis of w·h)
        return d * std**2 * sigma_h**2 * torch.randn(k, generator=generator, dtype=torch.float64).pow(2).mean().item()

    with pytest.raises(AssertionError, match="not a formula with noise added") as info:
        checks.check_mc_variance(mc_reward_variance)
    assert "no floor, cap or clip of the estimate —" not in str(info.value)


# =============================================================================================
# Issue 21, third attack (a student who had not seen the checkers): what the watch still missed, and the right
# answers it wrongly called stack reads. Each test fails without the fix that came with it.

def test_an_int_that_equals_everything_is_compared_as_the_int_it_is():
    class Eq(int):  # gaming: every `==` the checker asks is True
        def __eq__(self, other):
            return True

        def __ne__(self, other):
            return False

        __hash__ = int.__hash__

    def early_stopping_step(val_loss, steps, patience):
        if not torch.isfinite(val_loss[:patience]).any():
            raise ValueError("no finite loss before the stop")
        return Eq(0)

    with pytest.raises(AssertionError):
        check_early_stopping_step(early_stopping_step)


class _Deferred(float):
    """A float whose value is computed only when the checker converts it: after the answer has returned."""

    def __new__(cls, compute):
        out = float.__new__(cls, 0.0)
        out.compute = compute
        return out

    def __float__(self):
        return float(self.compute())


def test_a_float_that_reads_the_stack_when_converted_is_still_watched():
    import sys

    def from_the_checkers_frames(*args):
        frame = sys._getframe(1)
        while frame is not None:
            right = frame.f_locals.get("right")
            if callable(right):
                return right(*args)
            frame = frame.f_back
        return 0.0

    def std_for_unit_variance(d, sigma_h):  # gaming: the checker's own `right`, looked up at conversion time
        return _Deferred(lambda: from_the_checkers_frames(d, sigma_h))

    with pytest.raises(AssertionError, match="calls sys._getframe"):
        checks.check_std_for_unit_variance(std_for_unit_variance)


def test_a_float_that_calls_rmlib_when_converted_is_still_watched():
    import importlib

    def predict_reward_variance(d, std, sigma_h):  # gaming: rmlib by a computed name, called late
        own = getattr(importlib.import_module("rmlib." + "theory"), "isotropic_" + "reward_variance")
        return _Deferred(lambda: own(d, std, sigma_h))

    with pytest.raises(AssertionError, match="calls rmlib's own isotropic_reward_variance"):
        checks.check_predicted_variance(predict_reward_variance)


def in_a_thread(work):
    import threading

    out = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def test_rmlib_called_in_a_thread_is_watched():
    import importlib

    def layer_init(layer, std):  # gaming: the profile hook of the calling thread does not see other threads
        own = getattr(importlib.import_module("rml" + "ib"), "layer_" + "init")
        return in_a_thread(lambda: own(layer, std))

    with pytest.raises(AssertionError, match="calls rmlib's own layer_init"):
        checks.check_layer_init(layer_init)


def test_autograd_in_a_thread_is_not_by_hand():
    def bradley_terry_grad(chosen, rejected):  # gaming: grad mode is per thread, so no_grad does not reach it
        def work():
            with torch.set_grad_enabled(True):  # not enable_grad: the test is of the thread
                c, r = chosen.detach().clone().requires_grad_(), rejected.detach().clone().requires_grad_()
                return torch.autograd.grad(F.softplus(r - c).mean(), (c, r))
        return in_a_thread(work)

    with pytest.raises(AssertionError, match="uses torch.autograd.grad: that is autograd under another name"):
        checks.check_bt_gradient(bradley_terry_grad)


def test_a_library_that_looks_at_its_caller_is_not_a_stack_read(capsys):
    import logging

    def early_stopping_step(val_loss, steps, patience):  # right, and logs diverged evaluations
        for i in val_loss.isnan().nonzero().flatten().tolist():
            logging.getLogger("rmlib-test").warning("NaN validation loss at evaluation %d", i)  # reads a frame
        return es_reference(val_loss, steps, patience)

    def reward_gain_bias(reference):  # right, and returns a namedtuple built inside (namedtuple reads a frame)
        GainBias = collections.namedtuple("GainBias", "gain bias")
        r = reference.detach().double().flatten()
        if r.numel() < 2:
            raise ValueError("one reward has no spread")
        mean, std = r.mean().item(), r.std(correction=0).item()
        if not math.isfinite(std) or std <= 1e-6 * max(1.0, abs(mean)):
            raise ValueError("no usable spread")
        return GainBias(1 / std, -mean / std)

    assert check_early_stopping_step(early_stopping_step)
    assert checks.check_reward_gain_bias(reward_gain_bias)


def test_reseeding_torch_inside_layer_init_is_told_it_repeats_itself_not_that_it_reads_the_stack():
    def layer_init(layer, std):  # careless: torch.manual_seed (which records a traceback for CUDA's lazy seeding)
        torch.manual_seed(0)
        with torch.no_grad():
            layer.weight.normal_(0, std)
            layer.bias.zero_()
        return layer

    with pytest.raises(AssertionError) as info:
        checks.check_layer_init(layer_init)
    assert "sys._getframe" not in str(info.value)


def test_torch_func_by_a_computed_name_is_named_as_autograd():
    import importlib

    def bradley_terry_grad(chosen, rejected):
        grad = getattr(importlib.import_module("torch." + "func"), "grad")
        return grad(lambda c, r: F.softplus(r - c).mean(), argnums=(0, 1))(chosen, rejected)

    with pytest.raises(AssertionError, match="uses torch.func.grad: that is autograd under another name"):
        checks.check_bt_gradient(bradley_terry_grad)


def test_difference_std_from_rmlib_is_not_written_by_hand():
    import importlib

    def difference_std(d, rho):  # gaming: rmlib.theory's own function by a computed name, with σ_h² = 1 − rho
        own = getattr(importlib.import_module("rmlib.theory"), "reward_" + "difference_std")
        return own(d, (d + 1) ** -0.5, math.sqrt(1 - rho))

    with pytest.raises(AssertionError, match="calls rmlib's own reward_difference_std"):
        checks.check_difference_std(difference_std)


def test_an_estimate_that_never_moves_the_callers_generator_is_rejected():
    def mc_reward_variance(d, std, sigma_h, n, generator):  # careless: a private copy of the caller's seed
        g = torch.Generator().manual_seed(generator.initial_seed())
        w = torch.randn(n, d, generator=g, dtype=torch.float64) * std
        h = torch.randn(n, d, generator=g, dtype=torch.float64) * sigma_h
        return (w * h).sum(-1).var().item()

    fails_with(checks.check_mc_variance, mc_reward_variance, "left `generator` where it was")


def test_early_stopping_with_a_min_delta_is_rejected():
    # confused: an improvement must beat the best by 1e-4 (transformers' early_stopping_threshold)
    early_stopping_step = lambda v, s, p: int(s[_es_loop(v, s, p, margin=1e-4)[0]])  # noqa: E731
    fails_with(check_early_stopping_step, early_stopping_step, "min_delta")


def es_in_float32(val_loss, steps, patience):  # careless: .float() merges float64 losses 1e-9 apart into a tie
    return es_reference(val_loss.float(), steps, patience)


def test_early_stopping_that_compares_float64_losses_in_float32_is_rejected():
    fails_with(check_early_stopping_step, es_in_float32, "you compare the losses in float32")


def test_a_loss_that_works_in_place_when_no_gradient_is_needed_is_rejected():
    def bradley_terry_loss(chosen, rejected):  # careless: in place where autograd allows it (no grad needed)
        if chosen.requires_grad:
            return F.softplus(rejected - chosen).mean()
        return F.softplus(-chosen.sub_(rejected)).mean()

    fails_with(checks.check_bradley_terry_loss, bradley_terry_loss, "changed its input `chosen` in place")


@pytest.mark.parametrize("correction", [1, 0], ids=["nan", "zero"])
def test_an_estimate_from_one_sample_fewer_than_n_is_rejected(correction):
    def mc_reward_variance(d, std, sigma_h, n, generator):  # careless: n − 1 samples (the spread at n = 50 is 1% off)
        w = torch.randn(n - 1, d, generator=generator, dtype=torch.float64) * std
        h = torch.randn(n - 1, d, generator=generator, dtype=torch.float64) * sigma_h
        return (w * h).sum(-1).var(correction=correction).item()

    fails_with(checks.check_mc_variance, mc_reward_variance, "not n − 1")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_a_low_precision_estimate_is_rejected_on_every_seed(dtype):
    def mc_reward_variance(d, std, sigma_h, n, generator):  # careless: rejected on about 3 seeds in 4 before
        w = torch.randn(n, d, generator=generator, dtype=dtype) * std
        h = torch.randn(n, d, generator=generator, dtype=dtype) * sigma_h
        return (w * h).sum(-1).var().item()

    for seed in range(4):
        fails_with(lambda fn: checks.check_mc_variance(fn, seed=seed), mc_reward_variance,
                   f"your estimates are {str(dtype)[6:]} numbers|gave 0.0")


@pytest.mark.parametrize("dim", [-1, 0], ids=["rows", "columns"])
def test_a_weight_recentred_after_drawing_is_rejected(dim):
    def layer_init(layer, std):  # confused: "mean 0" enforced exactly, row by row (std only √(1 − 1/d) lower)
        with torch.no_grad():
            layer.weight.normal_(0, std)
            if layer.weight.shape[dim] > 1:
                layer.weight.sub_(layer.weight.mean(dim, keepdim=True))
        return layer

    fails_with(checks.check_layer_init, layer_init, "means of the weight spread by")


# =============================================================================================
# Issue 21, fourth attack (a second student who had not seen the checkers): routes around the watch, answers that
# detect the check, and mistakes the probes did not exercise. Each test fails without the fix that came with it.

def _rmlib(name):
    import importlib

    module, attr = name.rsplit(".", 1)
    return getattr(importlib.import_module("rm" + "lib" + module), attr)  # a computed name: no trace in bytecode


def in_a_raw_thread(work, start=None):
    import _thread

    box, lock = [], _thread.allocate_lock()
    lock.acquire()

    def run():
        try:
            box.append(work())
        finally:
            lock.release()

    (start or _thread.start_new_thread)(run, ())  # no threading.Thread: threading.setprofile does not reach it
    lock.acquire()
    return box[0]


def test_rmlib_in_a_raw_thread_is_code_the_check_cannot_watch():
    def score_head_std(hidden_size):
        return in_a_raw_thread(lambda: _rmlib(".score_head_std")(hidden_size))

    fails_with(checks.check_score_head_std, score_head_std, r"starts code the check cannot watch \(_thread")


def test_taking_the_threads_hook_away_fails():
    import threading

    def score_head_std(hidden_size):
        threading.setprofile(None)
        return in_a_thread(lambda: _rmlib(".score_head_std")(hidden_size))

    fails_with(checks.check_score_head_std, score_head_std, "calls threading.setprofile")


def test_a_trace_function_is_code_the_check_cannot_watch():
    import sys

    def score_head_std(hidden_size):  # gaming: profiling is off while a trace function runs
        box = []

        def tracer(frame, event, arg):
            if event == "call" and not box:
                box.append(_rmlib(".score_head_std")(hidden_size))

        sys.settrace(tracer)
        (lambda: None)()
        sys.settrace(None)
        return box[0]

    fails_with(checks.check_score_head_std, score_head_std, r"starts code the check cannot watch \(sys.settrace")


@pytest.mark.skipif(not hasattr(__import__("threading"), "setprofile_all_threads"),
                    reason="Python 3.10/3.11 cannot put a profile hook on a thread started earlier (TEACHING.md)")
@pytest.mark.parametrize("handoff", ["queue", "pool", "lock"])
def test_a_thread_started_before_the_check_does_not_run_rmlib_unseen(handoff):
    import concurrent.futures
    import queue
    import threading

    jobs, results, pool = queue.Queue(), queue.Queue(), concurrent.futures.ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()  # the pool's thread starts here, before the check
    done, box = threading.Lock(), []

    def worker():  # gaming: a worker started before the check, which the threads' hook never reaches
        while True:
            job = jobs.get()
            box.append(_rmlib(".score_head_std")(job))
            results.put(box[-1])
            done.release()

    threading.Thread(target=worker, daemon=True).start()

    def score_head_std(hidden_size):
        if handoff == "pool":
            return pool.submit(_rmlib(".score_head_std"), hidden_size).result()
        done.acquire()
        jobs.put(hidden_size)
        if handoff == "queue":
            out = results.get()
            done.acquire()
            done.release()
            return out
        done.acquire()  # a held lock: the worker releases it when it is done
        done.release()
        return results.get_nowait()

    fails_with(checks.check_score_head_std, score_head_std, "calls rmlib's own score_head_std")


def _switch_off_through_partial(hidden_size):  # gaming: calling a partial raises no c_call event for what it wraps
    import functools
    import sys

    functools.partial(sys.setprofile, None)()
    return _rmlib(".score_head_std")(hidden_size)


def _settrace_through_map(hidden_size):
    import sys

    box = []

    def tracer(frame, event, arg):
        if event == "call" and not box:
            box.append(_rmlib(".score_head_std")(hidden_size))

    list(map(sys.settrace, [tracer]))
    (lambda: None)()
    list(map(sys.settrace, [None]))
    return box[0]


def _frames_through_partial(hidden_size):
    import functools
    import sys

    functools.partial(sys._getframe, 0)()
    return (hidden_size + 1) ** -0.5


def _switch_off_through_ctypes(hidden_size):
    import ctypes

    ctypes.pythonapi.PyEval_SetProfile(None, None)
    return _rmlib(".score_head_std")(hidden_size)


@pytest.mark.parametrize("answer, message", [
    (_switch_off_through_partial, "calls sys.setprofile"), (_settrace_through_map, r"cannot watch \(sys.settrace"),
    (_frames_through_partial, "calls sys._getframe"), (_switch_off_through_ctypes, "calls sys.setprofile")],
    ids=["partial-setprofile", "map-settrace", "partial-getframe", "ctypes-setprofile"])
def test_a_call_wrapped_in_c_code_is_still_seen(answer, message):
    fails_with(checks.check_score_head_std, answer, message)


def test_autograd_after_switching_the_hook_off_through_partial_is_seen():
    import functools
    import sys

    def bradley_terry_grad(chosen, rejected):
        functools.partial(sys.setprofile, None)()
        with torch.set_grad_enabled(True):  # not enable_grad: the test is of the switch
            c, r = chosen.detach().clone().requires_grad_(), rejected.detach().clone().requires_grad_()
            return getattr(getattr(torch, "auto" + "grad"), "grad")(F.softplus(r - c).mean(), (c, r))  # unread names

    fails_with(checks.check_bt_gradient, bradley_terry_grad, "calls sys.setprofile")


class _FloatCallingRmlib(float):
    def __float__(self):  # gaming: runs only when the checker converts the value, after the watch
        return float(_rmlib(".score_head_std")(self.d))


def _object_array(hidden_size):
    x = _FloatCallingRmlib(0.0)
    x.d = hidden_size
    out = np.empty(1, dtype=object)
    out[0] = x
    return out


def _globals_whose_get_runs_rmlib(hidden_size):
    import sys

    class Globals(dict):  # gaming: the hook read a frame's module name with f_globals.get, running this code
        def get(self, key, default=None):
            if key == "__name__" and "d" in self:
                self["out"] = _rmlib(".score_head_std")(self["d"])
            return dict.get(self, key, default)

    g = Globals(sys=sys, d=hidden_size, __builtins__=__builtins__)
    exec("def probe():\n    sys.getprofile()\n", g)
    g["probe"]()
    return float(g["out"])


def _mode_left_on(chosen, rejected):
    from torch.overrides import TorchFunctionMode

    out = (torch.zeros_like(chosen), torch.zeros_like(rejected))

    class FillLater(TorchFunctionMode):  # gaming: runs autograd inside the checker's next torch call
        def __torch_function__(self, func, types, args=(), kwargs=None):
            torch._C._pop_torch_function_stack()
            with torch.set_grad_enabled(True):  # not enable_grad: the test is of the mode
                c, r = chosen.detach().clone().requires_grad_(), rejected.detach().clone().requires_grad_()
                grads = getattr(getattr(torch, "auto" + "grad"), "grad")(F.softplus(r - c).mean(), (c, r))
            with torch.no_grad():
                out[0].copy_(grads[0]), out[1].copy_(grads[1])
            return func(*args, **(kwargs or {}))

    FillLater().__enter__()
    return out


def _audit_hook_of_its_own(chosen, rejected):
    import sys

    sys.addaudithook(lambda event, args: None)  # gaming: a hook that would run code after the watch
    return bt_grad_via_sigmoid_delta(chosen, rejected)


@pytest.mark.parametrize("checker, answer, message", [
    ("check_score_head_std", _object_array, "numpy.ndarray of dtype object"),
    ("check_score_head_std", _globals_whose_get_runs_rmlib, "raised KeyError"),
    ("check_bt_gradient", _mode_left_on, r"cannot watch \(a torch function or dispatch mode left on"),
    ("check_bt_gradient", _audit_hook_of_its_own, r"cannot watch \(sys.addaudithook")],
    ids=["object-array", "globals-get", "torch-mode-left-on", "own-audit-hook"])
def test_code_that_would_run_after_the_watch_is_seen(checker, answer, message):
    fails_with(getattr(checks, checker), answer, message)
    assert torch._C._len_torch_function_stack() == 0  # the mode was taken off


def _swapped_class(borrow_names):
    def layer_init(layer, std):  # gaming: the checker's first read of .weight would call rmlib's layer_init
        base = type(layer)

        class Swapped(base):
            def __getattr__(self, name):
                if name == "weight" and type(self) is Swapped:
                    self.__class__ = base
                    _rmlib(".layer_init")(self, std)
                return base.__getattr__(self, name)

        if borrow_names:  # and torch's module and class names with it
            Swapped.__module__, Swapped.__qualname__ = base.__module__, base.__qualname__
        layer.__class__ = Swapped
        return layer
    return layer_init


def _weight_in_the_instance_dict(layer, std):  # gaming: found before the parameter, by every later read
    layer.__dict__["weight"] = torch.nn.Parameter(torch.randn_like(layer.weight) * std)
    return layer


@pytest.mark.parametrize("answer", [_swapped_class(False), _swapped_class(True), _weight_in_the_instance_dict],
                         ids=["swapped-class", "forged-class", "shadow"])
def test_a_layer_must_still_be_torchs_class_with_plain_parameters(answer):
    fails_with(checks.check_layer_init, answer, "a layer whose class or parameters were replaced")


def test_a_device_context_with_code_of_its_own_is_a_mode_left_on():
    import types
    from torch.utils._device import DeviceContext

    def score_head_std(hidden_size):  # gaming: torch calls an instance's own __torch_function__
        def later(self, func, types_, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))
        mode = DeviceContext(torch.device("cpu"))
        mode.__torch_function__ = types.MethodType(later, mode)
        mode.__enter__()
        return 1 / math.sqrt(hidden_size + 1)

    fails_with(checks.check_score_head_std, score_head_std, "a torch function or dispatch mode left on")
    assert torch._C._len_torch_function_stack() == 0


def test_a_fraction_is_converted_under_the_watch():
    import fractions

    class Numerator(int):
        def __int__(self):  # gaming: runs when the checker turns the Fraction into a float
            return round(_rmlib(".score_head_std")(self.d) * 2**60)

    def score_head_std(hidden_size):
        n = Numerator(1)
        n.d = hidden_size
        out = fractions.Fraction.__new__(fractions.Fraction)
        out._numerator, out._denominator = n, 2**60
        return out

    fails_with(checks.check_score_head_std, score_head_std, "calls rmlib's own score_head_std")


def _forward_mode(chosen, rejected):
    import torch.autograd.forward_ad as fwad

    with torch.inference_mode(False):
        c, r = chosen.clone(), rejected.clone()
        with fwad.dual_level():
            per_pair = F.softplus(r - fwad.make_dual(c, torch.ones_like(c))) / c.numel()
            g = fwad.unpack_dual(per_pair).tangent.clone()
    return g, -g


def _graph_taken_apart_by_hand(chosen, rejected):
    with torch.inference_mode(False), torch.enable_grad():
        c, r = chosen.clone().requires_grad_(), rejected.clone().requires_grad_()
        d = r - c
        softplus = F.softplus(d)
        loss = softplus.mean()
        g_d = d.grad_fn(softplus.grad_fn(loss.grad_fn(torch.ones((), dtype=c.dtype))))
    return g_d[1].detach().clone(), g_d[0].detach().clone()


@pytest.mark.parametrize("answer", [_forward_mode, _graph_taken_apart_by_hand], ids=["forward-ad", "grad-fn"])
def test_autograd_in_other_forms_is_not_by_hand(answer):
    fails_with(checks.check_bt_gradient, answer, "that is autograd under another name")


def test_torchs_fused_adam_kernel_is_adams_step():
    def adam_first_step(grad, lr):
        p, m, v = torch.zeros_like(grad), torch.zeros_like(grad), torch.zeros_like(grad)
        torch._fused_adam_([p], [grad.clone()], [m], [v], [], [torch.tensor(1.0)], lr=lr, beta1=0.9, beta2=0.999,
                           weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
        return p

    fails_with(checks.check_adam_first_step, adam_first_step, "_fused_adam_")


_LATER = []


def _run_later(event, args):  # an audit hook installed before the check: code outside every answer's call
    if _LATER and not _ACTIVE_WATCHES():
        _LATER.pop()()


def _ACTIVE_WATCHES():
    from rmlib.checks import _own

    return _own._ACTIVE


def test_a_result_filled_in_after_the_watch_is_not_the_answer():
    import sys

    if _run_later not in getattr(test_a_result_filled_in_after_the_watch_is_not_the_answer, "hooks", ()):
        sys.addaudithook(_run_later)  # for the life of the process, idle while _LATER is empty
        test_a_result_filled_in_after_the_watch_is_not_the_answer.hooks = (_run_later,)

    def bradley_terry_grad(chosen, rejected):
        out = (torch.zeros_like(chosen), torch.zeros_like(rejected))

        def fill():
            with torch.no_grad():
                s = torch.sigmoid(rejected - chosen) / chosen.numel()
                out[0].copy_(-s), out[1].copy_(s)
        _LATER.append(fill)
        return out

    try:
        with pytest.raises(AssertionError):
            checks.check_bt_gradient(bradley_terry_grad)
    finally:
        _LATER.clear()


def test_the_default_device_left_set_is_put_back():
    def score_head_std(hidden_size):  # every later tensor on the meta device, the checker's own too
        torch.set_default_device("meta")
        return 1 / math.sqrt(hidden_size + 1)

    fails_with(checks.check_score_head_std, score_head_std, r"torch.set_default_device\(...\) moves every later tensor")
    assert torch.get_default_device() == torch.device("cpu") and torch._C._len_torch_function_stack() == 0


def test_a_thread_started_with_threadings_hook_taken_away_is_seen():
    import threading

    def score_head_std(hidden_size):  # gaming: a plain attribute write, no call the hook could see
        hook, threading._profile_hook = threading._profile_hook, None
        try:
            return in_a_thread(lambda: _rmlib(".score_head_std")(hidden_size))
        finally:
            threading._profile_hook = hook

    fails_with(checks.check_score_head_std, score_head_std, r"without the watch's hook|calls rmlib's own")


def test_replacing_sys_setprofile_by_name_does_not_switch_the_watch_off():
    import sys

    real = sys.setprofile, getattr(sys, "_setprofileallthreads", None)

    def score_head_std(hidden_size):  # gaming: the first call replaces them; later calls use rmlib
        if sys.setprofile is real[0]:
            sys.setprofile = lambda f: real[0](None)
            if real[1]:
                sys._setprofileallthreads = lambda f: real[1](None)
            return 1 / math.sqrt(hidden_size + 1)
        return _rmlib(".score_head_std")(hidden_size)

    try:
        fails_with(checks.check_score_head_std, score_head_std, "calls rmlib's own score_head_std")
    finally:
        sys.setprofile = real[0]
        if real[1]:
            sys._setprofileallthreads = real[1]


@pytest.mark.skipif(not hasattr(__import__("sys"), "monitoring"), reason="sys.monitoring is Python 3.12+")
def test_a_sys_monitoring_callback_is_code_the_check_cannot_watch():
    import sys

    mon, box = sys.monitoring, {}

    def sentinel():
        pass

    def callback(code, offset):
        if code is sentinel.__code__ and "d" in box:
            box["out"] = _rmlib(".score_head_std")(box.pop("d"))

    def score_head_std(hidden_size):
        mon.use_tool_id(4, "answer")
        try:
            mon.register_callback(4, mon.events.PY_START, callback)
            mon.set_local_events(4, sentinel.__code__, mon.events.PY_START)
            box["d"] = hidden_size
            sentinel()
            mon.set_local_events(4, sentinel.__code__, 0)
        finally:
            mon.free_tool_id(4)
        return box.pop("out")

    fails_with(checks.check_score_head_std, score_head_std, r"cannot watch \(sys.monitoring")


def test_a_table_of_the_fixed_widths_and_a_wrong_rule_elsewhere_does_not_pass():
    fixed = {d: 1 / math.sqrt(d + 1) for d in (1, 2, 5, 64, 768, 4096)}
    for seed in range(20):  # passed on 37 of seeds 0-199 before a fresh width below 10^4 was drawn (sixth attack)
        fails_with(lambda fn: checks.check_score_head_std(fn, seed=seed), lambda d: fixed.get(d, d**-0.5),
                   "expected 1/sqrt")


@pytest.mark.skipif(not hasattr(__import__("threading"), "setprofile_all_threads"),
                    reason="_thread.start_new_thread raises an audit event from Python 3.12 on (TEACHING.md)")
def test_a_raw_thread_started_through_partial_is_seen():
    import functools

    def score_head_std(hidden_size):
        return in_a_raw_thread(lambda: _rmlib(".score_head_std")(hidden_size),
                               start=functools.partial(__import__("_thread").start_new_thread))

    fails_with(checks.check_score_head_std, score_head_std, r"cannot watch \(_thread")


def test_another_process_is_code_the_check_cannot_watch():
    import subprocess

    def score_head_std(hidden_size):  # gaming: the library's answer, computed where no hook reaches
        subprocess.run(["true"], check=False)
        return (hidden_size + 1) ** -0.5

    fails_with(checks.check_score_head_std, score_head_std, r"starts code the check cannot watch \(subprocess")


def test_any_of_torch_optims_optimizers_is_not_adams_first_step_by_hand():
    def adam_first_step(grad, lr):  # gaming: Adamax's first step is Adam's
        p = torch.zeros_like(grad, requires_grad=True)
        opt = getattr(torch.optim, "Ada" + "max")([p], lr=lr)
        p.grad = grad.clone()
        opt.step()
        return p.detach()

    fails_with(checks.check_adam_first_step, adam_first_step, r"runs torch.optim's optimizer code \(torch.optim.Adamax")


def test_an_autograd_kernel_called_directly_is_not_by_hand():
    def bradley_terry_grad(chosen, rejected):
        d = rejected - chosen
        g = torch.ops.aten.softplus_backward(torch.full_like(d, 1.0 / d.numel()), d, 1.0, 20.0)
        return -g, g

    fails_with(checks.check_bt_gradient, bradley_terry_grad, "softplus_backward: that is autograd under another name")


def test_an_answer_that_looks_for_the_watch_fails():
    import sys

    def std_for_unit_variance(d, sigma_h):  # gaming: right only while something watches
        return (d * sigma_h**2 + 1) ** -0.5 if sys.getprofile() is not None else 0.02

    fails_with(checks.check_std_for_unit_variance, std_for_unit_variance, "calls sys.getprofile")


def test_a_gradient_that_changes_with_grad_mode_fails():
    def bradley_terry_grad(chosen, rejected):  # gaming: right only under the check's inference mode
        s = torch.sigmoid(chosen - rejected) - 1
        s = s / chosen.numel()
        return (-s, s) if torch.is_grad_enabled() else (s, -s)

    fails_with(checks.check_bt_gradient, bradley_terry_grad, "with grad mode on")


def test_early_stopping_that_rebuilds_the_step_from_even_spacing_is_rejected():
    def early_stopping_step(val_loss, steps, patience):  # careless: assumes evaluations every steps[1] − steps[0]
        best_step = es_reference(val_loss, torch.arange(len(steps)), patience)
        return int(steps[0] + best_step * (steps[1] - steps[0]))

    with pytest.raises(AssertionError):
        check_early_stopping_step(early_stopping_step)


def test_float32_draws_copied_into_a_float64_weight_are_rejected():
    def layer_init(layer, std):  # careless: torch.randn defaults to float32; copy_ converts silently
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape) * std)
        return layer

    fails_with(checks.check_layer_init, layer_init, "every float64 weight is a float32 number")


@pytest.mark.parametrize("samples", ["shared-h", "n+1"])
def test_estimates_from_dependent_or_extra_samples_are_rejected(samples):
    def mc_reward_variance(d, std, sigma_h, n, generator):
        m = n + 1 if samples == "n+1" else n
        w = torch.randn(m, d, generator=generator, dtype=torch.float64) * std
        h = torch.randn(m, d, generator=generator, dtype=torch.float64) * sigma_h
        if samples == "shared-h":  # confused: one hidden state for each two samples
            h = h[: (n + 1) // 2].repeat_interleave(2, 0)[:n]
        return (w * h).sum(-1).var().item()

    fails_with(checks.check_mc_variance, mc_reward_variance, "distributed unlike a sample variance")


def test_one_sample_too_many_is_named_where_its_tails_at_n_3_look_clipped():
    def mc_reward_variance(d, std, sigma_h, n, generator):  # careless: n + 1 samples
        w = torch.randn(n + 1, d, generator=generator, dtype=torch.float64) * std
        h = torch.randn(n + 1, d, generator=generator, dtype=torch.float64) * sigma_h
        return (w * h).sum(-1).var().item()

    # Probe seed 12345678: only 28.8% of its estimates at n = 3 lie below a quarter of their mean (the tail test
    # wants 30%, as on about 1 seed in 5), and the hint spoke of floors, caps and noise instead of the sample count.
    with pytest.raises(AssertionError, match="distributed unlike a sample variance") as info:
        checks.check_mc_variance(mc_reward_variance, seed=12345678)
    assert "no floor, cap or clip" not in str(info.value)


def test_a_shared_head_is_named_even_when_its_first_draws_are_alike():
    # Probe seed 92619548: the shared head's first five estimates at d = 1 (w² each) are 0.23, 0.23, 0.004, 0.10,
    # 0.0002, which swing by less than 10 standard errors; with five generators it was told only "theory says".
    fails_with(lambda fn: checks.check_mc_variance(fn, seed=92619548), mc_shared_head, "one head w .*reused")


def test_a_slightly_wrong_divisor_is_not_told_it_caps_n():
    def mc_reward_variance(d, std, sigma_h, n, generator):  # careless: divides by 0.995 n
        r = (torch.randn(n, d, generator=generator, dtype=torch.float64) * std
             * torch.randn(n, d, generator=generator, dtype=torch.float64) * sigma_h).sum(-1)
        return ((r - r.mean()) ** 2).sum().item() / (0.995 * n)

    fails_with(checks.check_mc_variance, mc_reward_variance, r"divide by n − 1 \(or n\)")
    # Probe seed 91582233: its 24 estimates at n = 10⁶ have mean squared z-score 2.79 (the cap test wants 3), and it
    # passed; their mean z-score (1.46, above 5/sqrt(24) = 1.02) is the evidence of a divisor slightly off.
    fails_with(lambda fn: checks.check_mc_variance(fn, seed=91582233), mc_reward_variance, r"divide by n − 1 \(or n\)")


def test_adam_in_float32_for_float64_gradients_is_told_so():
    def adam_first_step(grad, lr):
        g = grad.float()
        return (-lr * g / (g.abs() + 1e-8)).to(grad.dtype)

    fails_with(checks.check_adam_first_step, adam_first_step, "computed in float32")


def test_right_answers_of_the_fourth_attack_pass(capsys):
    import dataclasses
    import fractions

    def bradley_terry_loss(chosen, rejected):  # torch's BCE, whose float32 backward rounds σ(Δ) − 1
        d = chosen - rejected
        return F.binary_cross_entropy_with_logits(d, torch.ones_like(d))

    @dataclasses.dataclass
    class GainBias:
        gain: float
        bias: float

        def __iter__(self):
            yield self.gain
            yield self.bias

    def reward_gain_bias(reference):
        r = reference.double().flatten()
        if r.numel() < 2 or not torch.isfinite(r).all():
            raise ValueError("need two finite rewards")
        mean, std = r.mean().item(), r.std(correction=0).item()
        if std <= 1e-6 * max(1.0, abs(mean)):
            raise ValueError("no spread")
        return GainBias(1 / std, -mean / std)

    assert checks.check_bradley_terry_loss(bradley_terry_loss, seed=481969170)  # the seed that rejected it
    assert checks.check_reward_gain_bias(reward_gain_bias)
    assert checks.check_predicted_variance(lambda d, std, sigma_h: fractions.Fraction(d) * fractions.Fraction(std) ** 2
                                           * fractions.Fraction(sigma_h) ** 2)


def test_a_right_estimate_whose_pilot_spread_at_d_1_is_large_passes():
    # Probe seed 721: this right answer's first 40 estimates at d = 1, n = 20 spread 2.7 times the sample
    # variance's standard deviation (r² is heavy-tailed: 38 of 200 000 simulated right sets exceed 2.5), and the
    # pilot's upper bound rejected it; the 600 estimates are inside the final band.
    def mc_reward_variance(d, std, sigma_h, n, generator):  # w and h drawn interleaved, a 0-dim tensor back
        x = torch.randn(n, d, 2, generator=generator, dtype=torch.float64)
        return (x[..., 0] * std * x[..., 1] * sigma_h).sum(-1).var()

    assert checks.check_mc_variance(mc_reward_variance, seed=721) is True


def test_a_right_estimate_whose_pilot_spread_at_d_1_is_small_passes():
    # Probe seed 1540: this right answer's first 40 estimates at d = 1, n = 20 spread 0.375 times the sample
    # variance's standard deviation, below the pilot's former lower bound 0.4 (one right set in 45 000).
    def mc_reward_variance(d, std, sigma_h, n, generator):
        x = torch.randn(n, d, 2, generator=generator, dtype=torch.float64)
        return (x[..., 0] * std * x[..., 1] * sigma_h).sum(-1).var()

    assert checks.check_mc_variance(mc_reward_variance, seed=1540) is True


def _estimate_unless_large(d, std, sigma_h, n, generator):  # gaming: the formula once n is large
    if n >= 500_000:
        return d * std**2 * sigma_h**2
    return mc_reference(d, std, sigma_h, n, generator)


def _slightly_off_divisor(d, std, sigma_h, n, generator):  # careless: a divisor 0.2% off
    w = torch.randn(n, d, generator=generator, dtype=torch.float64) * std
    h = torch.randn(n, d, generator=generator, dtype=torch.float64) * sigma_h
    r = (w * h).sum(-1)
    return ((r - r.mean()).pow(2).sum() / (0.995 * n)).item()


def test_large_n_estimates_closer_than_sampling_allows_or_shifted_one_way_are_named():
    fails_with(checks.check_mc_variance, _estimate_unless_large, "closer than a sample variance")
    # Probe seed 1005: mean squared z-score under 3, so the hint must name the shift, not "1.4 standard errors".
    fails_with(lambda fn: checks.check_mc_variance(fn, seed=1005), _slightly_off_divisor, "all off the same way")
