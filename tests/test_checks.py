"""rmlib.checks: every checker accepts the reference answer and rejects typical wrong answers with the right hint."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rmlib import checks, layer_init, score_head_std
from rmlib.theory import sample_hidden_states


def fails_with(checker, fn, hint: str) -> None:
    with pytest.raises(AssertionError, match=hint):
        checker(fn)


# ----------------------------------------------------------------------------------------- shared contract


def not_yet(*args):
    raise NotImplementedError


# Every public checker, including ones added later, is held to the shared contract.
CHECKERS = [getattr(checks, name) for name in checks.__all__ if name.startswith("check_")]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_stub_prints_not_implemented_and_returns_false(checker, capsys):
    assert checker(not_yet) is False
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_non_callable_is_a_type_error(checker):
    with pytest.raises(TypeError, match="expects your function"):
        checker(42)


def test_a_crash_in_the_learners_code_is_explained():
    def crashes(layer, std):
        raise KeyError("oops")

    fails_with(checks.check_layer_init, crashes, r"raised KeyError: 'oops'\n  called as layer_init\(nn.Linear")


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


# ------------------------------------------------------------------------------------------- layer_init


def test_layer_init_accepts_the_reference(capsys):
    assert checks.check_layer_init(layer_init) is True
    out = capsys.readouterr().out
    assert out.startswith("✓ layer_init") and out.count("\n") == 1


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


def li_std_as_mean(layer, std):
    nn.init.normal_(layer.weight, std)  # the classic slip: the 2nd positional argument is the mean
    return layer


def li_variance(layer, std):
    nn.init.normal_(layer.weight, std=std**2)
    return layer


def li_ignores_std(layer, std):
    nn.init.normal_(layer.weight, std=1 / math.sqrt(layer.weight.shape[1] + 1))
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


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (li_returns_none, "returned None"),
        (li_new_layer, "a new layer instead of in place"),
        (li_new_parameter, "a new Parameter instead of in place"),
        (li_touches_bias, "the bias was changed"),
        (li_uniform, "uniform instead of normal"),
        (li_uniform_same_std, "uniform instead of normal"),
        (li_std_as_mean, "passes std as the MEAN"),
        (li_variance, r"used std² \(a variance\)"),
        (li_ignores_std, "ignored the std argument"),
        (li_does_nothing, "unchanged"),
        (li_bias_free_crash, "don't touch the bias"),
        (li_detaches, "no longer requires grad"),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_layer_init_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_layer_init, wrong, hint)


# --------------------------------------------------------------------------------------- score_head_std


def test_score_head_std_accepts_the_reference_and_a_tensor_answer():
    assert checks.check_score_head_std(score_head_std)
    assert checks.check_score_head_std(lambda d: torch.tensor(d + 1.0).rsqrt())


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda d: 1 / (d + 1), r"1/\(d\+1\) instead of 1/sqrt\(d\+1\)"),
        (lambda d: 1 / math.sqrt(d), r"forgot the \+1"),
        (lambda d: math.sqrt(d + 1), "upside down"),
        (lambda d: 1 / math.sqrt(3 * d), "PyTorch's default"),
        (lambda d: 0.02, "initializer_range"),
        (lambda d: math.sqrt(2 / (d + 1)), "Xavier"),
        (lambda d: 1 / d, "neither the std nor the variance"),
        (lambda d: None, "returned None"),
        (lambda d: "0.1", "must return a number"),
        (lambda d: 1 / math.sqrt(d + 2), r"expected 1/sqrt\(1\+1\)"),
    ],
    ids=["variance-as-std", "no-plus-one", "upside-down", "pytorch-default", "hf-constant", "xavier", "one-over-d",
         "none", "string", "other"],
)
def test_score_head_std_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_score_head_std, wrong, hint)


# --------------------------------------------------------------------------------- predicted variance


def test_predicted_variance_accepts_the_reference():
    assert checks.check_predicted_variance(lambda d, s, h: d * s**2 * h**2)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda d, s, h: math.sqrt(d) * s * h, "standard deviation of r"),
        (lambda d, s, h: d * s * h, "variances multiply"),
        (lambda d, s, h: s**2 * h**2, "factor d is missing"),
        (lambda d, s, h: d * s**2 * h, "σ_h must be squared"),
        (lambda d, s, h: d * s * h**2, "σ_w must be squared"),
        (lambda d, s, h: (d * s * h) ** 2, "you squared the sum"),
        (lambda d, s, h: (d + 1) * s**2 * h**2, r"d\+1 terms"),
        (lambda d, s, h: None, "returned None"),
    ],
    ids=["std", "no-squares", "no-d", "sigma-h-unsquared", "sigma-w-unsquared", "d-squared", "d-plus-one", "none"],
)
def test_predicted_variance_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_predicted_variance, wrong, hint)


# -------------------------------------------------------------------------------- Monte Carlo estimator


def mc_reference(d, std, sigma_h, n, generator):
    w = torch.randn(n, d, generator=generator) * std
    h = torch.randn(n, d, generator=generator) * sigma_h
    return (w * h).sum(-1).var().item()


def test_mc_variance_accepts_the_reference():
    assert checks.check_mc_variance(mc_reference)


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


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (mc_std, "standard deviation of r"),
        (mc_w_variance, "scaled w by std²"),
        (mc_h_variance, "scaled h by σ_h²"),
        (mc_mean_over_d, "averaged over the d coordinates"),
        (mc_one_coordinate, "single product"),
        (mc_uniform, "torch.rand"),
        (mc_shared_head, "one head w .*reused"),
        (mc_no_generator, "pass generator=generator"),
        (lambda *a: None, "returned None"),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_mc_variance_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_mc_variance, wrong, hint)


# ----------------------------------------------------------------------------------------- formula breaker


def offset_states(n, d, generator):
    return sample_hidden_states(n, d, 1.0, offset=torch.full((d,), 3.0), generator=generator)


def test_formula_breaker_accepts_a_shared_offset_and_a_constant_state():
    assert checks.check_formula_breaker(offset_states)
    assert checks.check_formula_breaker(lambda n, d, g: torch.ones(n, d))  # σ_h² = 0 but Var(r) = σ_w² d


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda n, d, g: torch.randn(n, d, generator=g), "Isotropic h at any scale"),
        (lambda n, d, g: 5 * torch.randn(n, d, generator=g), "rescaling h rescales"),
        (lambda n, d, g: torch.randn(n, d, generator=g) * torch.linspace(0.1, 3, d), "Unequal per-coordinate variances"),
        (lambda n, d, g: torch.randn(n, 1, generator=g).expand(n, d).clone(), "Correlations between coordinates"),
        (lambda n, d, g: None, "returned None"),
        (lambda n, d, g: offset_states(n, d, g).T, "transposed"),
        (lambda n, d, g: torch.full((n, d), float("nan")), "inf or NaN"),
        (lambda n, d, g: offset_states(n, d, None), "pass generator=generator"),
        (lambda n, d, g: offset_states(n, d, g).numpy(), "floating-point tensor"),
    ],
    ids=["isotropic", "scaled", "anisotropic", "correlated", "none", "transposed", "nan", "no-generator", "numpy"],
)
def test_formula_breaker_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_formula_breaker, wrong, hint)


# ------------------------------------------------------------------------------------- Bradley-Terry loss


def bt_reference(chosen, rejected):
    return -F.logsigmoid(chosen - rejected).mean()


def test_bt_loss_accepts_the_reference_and_the_softplus_form():
    assert checks.check_bradley_terry_loss(bt_reference)
    assert checks.check_bradley_terry_loss(lambda c, r: F.softplus(r - c).mean())


def bt_where(c, r):
    d = c - r
    return torch.where(d > 0, torch.log1p(torch.exp(-d)), -d + torch.log1p(torch.exp(d))).mean()


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c, r: None, "returned None"),
        (lambda c, r: -F.logsigmoid(c - r), "take the .mean"),
        (lambda c, r: F.logsigmoid(c - r).mean(), "dropped the minus"),
        (lambda c, r: -F.logsigmoid(r - c).mean(), "wrong sign of Δ"),
        (lambda c, r: -F.logsigmoid(c - r).sum(), "sum instead of mean"),
        (lambda c, r: -torch.log(torch.sigmoid(c - r)).mean(), "overflows at large reward differences"),
        (lambda c, r: torch.log(1 + torch.exp(r - c)).mean(), "overflows at large reward differences"),
        (lambda c, r: -torch.log(torch.sigmoid(c - r) + 1e-8).mean(), "caps the loss"),
        (lambda c, r: -torch.log(torch.sigmoid(c - r).clamp_min(1e-12)).mean(), "caps the loss"),
        (lambda c, r: torch.tensor(-F.logsigmoid(c - r).mean().item()), "no gradient"),
        (bt_where, "torch.where evaluates both branches"),
        (lambda c, r: (-F.logsigmoid(c - r).mean()).item(), "return a torch tensor"),
    ],
    ids=["none", "no-mean", "no-minus", "swapped", "sum", "log-sigmoid", "log-1-exp", "eps", "clamp", "detached",
         "where", "float"],
)
def test_bt_loss_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_bradley_terry_loss, wrong, hint)


# ------------------------------------------------------------------------------------ Bradley-Terry gradient


def bt_grad_reference(chosen, rejected):
    g = -torch.sigmoid(rejected - chosen) / chosen.numel()
    return g, -g


def test_bt_gradient_accepts_the_reference(capsys):
    assert checks.check_bt_gradient(bt_grad_reference)
    assert "relative error vs autograd" in capsys.readouterr().out


def bt_grad_unstable(c, r):
    e = torch.exp(r - c)
    g = -e / (1 + e) / c.numel()
    return g, -g


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c, r: None, "returned None"),
        (lambda c, r: bt_grad_reference(c, r)[0], "return a pair of tensors"),
        (lambda c, r: tuple(-g for g in bt_grad_reference(c, r)), "wrong sign"),
        (lambda c, r: tuple(g * c.numel() for g in bt_grad_reference(c, r)), "gradient of the sum"),
        (lambda c, r: (-torch.sigmoid(c - r) / c.numel(), torch.sigmoid(c - r) / c.numel()), r"σ\(Δ\) where σ\(−Δ\) belongs"),
        (lambda c, r: (bt_grad_reference(c, r)[0],) * 2, "opposite sign"),
        (lambda c, r: tuple(g[:-1] for g in bt_grad_reference(c, r)), "shape of its input"),
        (bt_grad_unstable, "inf/inf"),
        (lambda c, r: tuple(g * 1.001 for g in bt_grad_reference(c, r)), "relative error 0.0005"),
    ],
    ids=["none", "single", "sign", "sum", "sigma-delta", "same-sign", "shape", "unstable", "scaled"],
)
def test_bt_gradient_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_bt_gradient, wrong, hint)


# ---------------------------------------------------------------------------------------- relative error


def test_relative_error_accepts_the_reference_and_a_float_answer():
    assert checks.check_relative_error(checks.relative_error)
    assert checks.check_relative_error(
        lambda x, y: torch.max((x - y).abs() / torch.clamp(x.abs() + y.abs(), min=1e-8)).item()
    )


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, y: (x - y).abs().max(), "ABSOLUTE error"),
        (lambda x, y: ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).mean(), "mean instead of max"),
        (lambda x, y: ((x - y) / (x.abs() + y.abs()).clamp_min(1e-8)).max(), r"take \|x − y\|"),
        (lambda x, y: ((x - y).abs() / (x + y).abs().clamp_min(1e-8)).max(), "opposite signs cancel"),
        (lambda x, y: ((x - y).abs() / x.abs().clamp_min(1e-8)).max(), r"not by \|x\| alone"),
        (lambda x, y: ((x - y).abs() / (x.abs() + y.abs())).max(), "floor the denominator"),
        (lambda x, y: None, "returned None"),
        (lambda x, y: (x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8), "must return one number"),
    ],
    ids=["absolute", "mean", "signed", "abs-of-sum", "x-only", "no-floor", "none", "tensor"],
)
def test_relative_error_rejects_wrong_answers(wrong, hint):
    fails_with(checks.check_relative_error, wrong, hint)


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
        (lambda x, y: _fit(x.log(), y.log())[0], "drop the pairs where x or y is 0"),
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
    ],
    ids=["zeros-kept", "linear", "swapped", "swapped-inverted", "intercept", "semi-log", "end-points", "mean-ratio",
         "none", "polyfit-pair"],
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
        (lambda g, lr: adam_reference(g, lr).flatten(), "gradient's shape"),
    ],
    ids=["sign", "sgd", "no-bias-correction", "eps-inside", "no-lr", "sign-only", "no-eps", "none", "shape"],
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


# =============================================================================================
# Worksheet 05, early stopping (rmlib.checks.sweep.check_early_stopping_step) — owned with worksheet 05.

from rmlib.checks.sweep import _ES_CASES, check_early_stopping_step  # noqa: E402


def es_reference(val_loss, steps, patience):
    best_i, waited = 0, 0
    for i in range(1, len(val_loss)):
        if val_loss[i] < val_loss[best_i]:
            best_i, waited = i, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return int(steps[best_i])


def es_with_tensors(val_loss, steps, patience):
    # Another correct form: the running minimum, and the first evaluation after `patience` without a new one.
    running = torch.cummin(val_loss.nan_to_num(float("inf")), 0).values
    improved = torch.cat([torch.tensor([True]), running[1:] < running[:-1]])
    last_improvement = torch.cummax(torch.where(improved, torch.arange(len(val_loss)), 0), 0).values
    stopped = (torch.arange(len(val_loss)) - last_improvement >= patience).nonzero()
    end = stopped[0, 0].item() if len(stopped) else len(val_loss) - 1
    return steps[last_improvement[end]]


def test_early_stopping_accepts_the_reference_and_a_tensor_form(capsys):
    assert check_early_stopping_step(es_reference)
    assert check_early_stopping_step(es_with_tensors)
    assert "✓ early_stopping_step" in capsys.readouterr().out
    assert check_early_stopping_step(not_yet) is False


def _es_loop(val_loss, steps, patience, *, strict=True, reset=True, stop_after=None):
    stop_after = patience if stop_after is None else stop_after
    best_i, waited, stop_i = 0, 0, len(val_loss) - 1
    for i in range(1, len(val_loss)):
        better = val_loss[i] < val_loss[best_i] if strict else val_loss[i] <= val_loss[best_i]
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
