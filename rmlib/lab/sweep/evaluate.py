"""How a sweep measures its runs: rewards, the step-0 quantities, held-out curves and the final metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from rmlib.data import MLPBackbone, PreferenceData, PreferenceSplit
from rmlib.lab.sweep.config import SweepConfig, head_weight
from rmlib.losses import bradley_terry_loss, preference_accuracy

EVAL_CHUNK = 16  # runs evaluated together: bounds memory at ~16 × 8192 × d floats


def rewards(h: torch.Tensor, w: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """h (R, N, d) or (N, d) shared, w (R, d) → rewards (R, N)."""
    if h.dim() == 2:
        return (h @ w.T).T + offset.unsqueeze(1)
    return torch.bmm(h, w.unsqueeze(2)).squeeze(2) + offset.unsqueeze(1)


def held_out_size(split: PreferenceSplit, pairs: int | None = None) -> int:
    """How many pairs of ``split`` an evaluation reads: the first ``pairs`` (all of them if None)."""
    return len(split) if pairs is None else min(pairs, len(split))


def answers(split: PreferenceSplit, pairs: int | None = None) -> torch.Tensor:
    """Inputs of the first ``pairs`` pairs: chosen answers, then their rejected partners."""
    k = held_out_size(split, pairs)
    return torch.cat([split.x_chosen[:k], split.x_rejected[:k]])


def pretrained_features(data: PreferenceData, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return data.backbone(x)


def stacked_backbone(data: PreferenceData, runs: int) -> dict[str, torch.Tensor]:
    """The pretrained backbone's parameters, each viewed with a leading run dimension (no copy)."""
    return {k: v.detach().unsqueeze(0).expand(runs, *v.shape) for k, v in data.backbone.named_parameters()}


def start_quantities(data: PreferenceData, configs: Sequence[SweepConfig]) -> dict[str, torch.Tensor]:
    """Per-run quantities fixed before training: head, its std and norm, step-0 loss and gradient."""
    d = data.hidden_size
    w0 = torch.stack([head_weight(c, d) for c in configs])
    # Step-0 loss and gradient depend only on the head: compute them once per distinct head.
    keys = [(c.init, c.seed) for c in configs]
    unique = list(dict.fromkeys(keys))
    where = torch.tensor([unique.index(k) for k in keys])
    first = [keys.index(k) for k in unique]
    loss0, grad0 = _initial_loss_and_grad(data, w0[first])
    return {"w0": w0, "head_std": torch.tensor([c.head_std(d) for c in configs]), "w0_norm": w0.norm(dim=1),
            "initial_loss": loss0[where], "grad_norm0": grad0[where]}


def _initial_loss_and_grad(data: PreferenceData, w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-training-set BT loss at step 0 and ‖∂L/∂θ_backbone‖ at the pretrained θ, per head in w0."""
    x = answers(data.train)
    n = len(data.train)
    forward = type(data.backbone).forward_with
    losses, norms = [], []
    for w in w0.split(EVAL_CHUNK):
        p = {k: v.clone().requires_grad_(True) for k, v in stacked_backbone(data, len(w)).items()}
        r = rewards(forward(p, x.expand(len(w), -1, -1)), w, torch.zeros(len(w)))
        loss = bradley_terry_loss(r[:, :n], r[:, n:], reduction="none").mean(1)
        grads = torch.autograd.grad(loss.sum(), list(p.values()))
        losses.append(loss.detach())
        norms.append(torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt())
    return torch.cat(losses), torch.cat(norms)


def linear_cka(h0: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Linear CKA (Kornblith et al. 2019) of features h0 (N, d) with each run's h (R, N, d).

    CKA = ‖AᵀB‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F) for column-centred A, B: 1 for features equal up to a rotation
    and scale, lower as they drift apart. Being invariant to rotation and scale, it cannot see the
    features stretch along one direction (such as the head's) if the others keep their share.
    """
    a = h0 - h0.mean(0)
    b = h - h.mean(1, keepdim=True)
    cross = (a.T @ b).pow(2).sum((1, 2))
    self_a = (a.T @ a).pow(2).sum().sqrt()
    self_b = (b.transpose(1, 2) @ b).pow(2).sum((1, 2)).sqrt()
    return cross / (self_a * self_b)


def split_stats(r: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """BT loss, accuracy, reward std and mean of rewards r (R, 2n): chosen answers then rejected ones."""
    rc, rr = r[:, :n], r[:, n:]
    return {"loss": bradley_terry_loss(rc, rr, reduction="none").mean(1), "acc": preference_accuracy(rc, rr, dim=1),
            "reward_std": r.std(1), "reward_mean": r.mean(1)}


def final_metrics(data: PreferenceData, joint: torch.Tensor, backbones: Mapping[str, torch.Tensor],
                  heads: torch.Tensor, offset: torch.Tensor) -> dict[str, torch.Tensor]:
    """The final metrics of every run (module docstring of :mod:`rmlib.lab.sweep`); frozen runs
    (``joint`` False) are evaluated with the pretrained backbone's features, computed once."""
    out: dict[str, torch.Tensor] = {}
    for mask, trained in ((~joint, False), (joint, True)):
        if mask.any():
            bb = {k: v[mask] for k, v in backbones.items()} if trained else None
            for k, v in _evaluate(data, bb, heads[mask], offset[mask]).items():
                out.setdefault(k, torch.full((len(joint),), float("nan")))[mask] = v
    return out


def _evaluate(data: PreferenceData, backbone: Mapping[str, torch.Tensor] | None, w: torch.Tensor,
              offset: torch.Tensor) -> dict[str, torch.Tensor]:
    """Final metrics of R runs; ``backbone=None`` means every run kept the pretrained backbone."""
    tr, te = data.train, data.test
    n_tr, n_te = len(tr), len(te)
    x_tr, x_te = answers(tr), answers(te)
    h0_tr, h0_te = pretrained_features(data, x_tr), pretrained_features(data, x_te)
    features_tr, features_te = SharedInputFeatures(data, x_tr), SharedInputFeatures(data, x_te)
    # Orient each test pair by the true reward so accuracy against it is plain accuracy.
    sign = torch.sign(te.r_chosen - te.r_rejected)
    out: dict[str, list[torch.Tensor]] = {}
    if backbone is not None:
        ref = {k: v.detach() for k, v in data.backbone.named_parameters()}
        ref_norm = torch.stack([v.pow(2).sum() for v in ref.values()]).sum().sqrt()
    with torch.no_grad():
        for start in range(0, len(w), EVAL_CHUNK):
            sl = slice(start, start + EVAL_CHUNK)
            wc, oc = w[sl], offset[sl]
            if backbone is None:
                h_tr, h_te = h0_tr, h0_te
                change, cka = torch.zeros(len(wc)), torch.ones(len(wc))
            else:
                p = {k: v[sl] for k, v in backbone.items()}
                h_tr, h_te = features_tr(p), features_te(p)
                change = torch.stack([(p[k] - ref[k]).flatten(1).pow(2).sum(1) for k in ref]).sum(0).sqrt() / ref_norm
                cka = linear_cka(h0_te, h_te)
            r_tr, r_te = rewards(h_tr, wc, oc), rewards(h_te, wc, oc)
            test = split_stats(r_te, n_te)
            rc, rr = r_te[:, :n_te], r_te[:, n_te:]
            part = {
                "train_loss": bradley_terry_loss(r_tr[:, :n_tr], r_tr[:, n_tr:], reduction="none").mean(1),
                "test_loss": test["loss"], "test_acc": test["acc"],
                "test_true_acc": preference_accuracy(rc * sign, rr * sign, dim=1),
                "reward_std": test["reward_std"], "reward_mean": test["reward_mean"],
                "backbone_change": change, "cka": cka,
            }
            for k, v in part.items():
                out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}


class SharedInputFeatures:
    """The features of R backbones (stacked parameters) on one shared input x (N, in), into buffers
    kept from call to call.

    For the course's backbone, fc2(gelu(fc1 x)) with the same ``baddbmm`` and GELU kernels as
    ``forward_with`` (the same bits), written into preallocated (R, N, ·) tensors: a fresh tensor of
    that size (megabytes) costs the kernel's page faults on every call, which took longer than the
    products themselves. Any other backbone goes through ``forward_with``.
    """

    def __init__(self, data: PreferenceData, x: torch.Tensor) -> None:
        self.x = x
        self.forward = type(data.backbone).forward_with
        names = [k for k, _ in data.backbone.named_parameters()]
        self.hand = type(data.backbone) is MLPBackbone and names == ["fc1.weight", "fc1.bias", "fc2.weight",
                                                                          "fc2.bias"]
        self.buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, params: Mapping[str, torch.Tensor]) -> torch.Tensor:
        runs = len(params["fc1.weight"]) if self.hand else len(next(iter(params.values())))
        x = self.x.expand(runs, -1, -1)
        if not self.hand:
            return self.forward(params, x)
        w1, b1, w2, b2 = (params[k] for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"))
        if self.buffers is None or len(self.buffers[0]) < runs:
            self.buffers = (x.new_empty(runs, len(self.x), w1.shape[1]), x.new_empty(runs, len(self.x), w2.shape[1]))
        a, h = (b[:runs] for b in self.buffers)
        torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2), out=a)
        torch.ops.aten.gelu_(a)
        return torch.baddbmm(b2.unsqueeze(1), a, w2.transpose(1, 2), out=h)


class Evaluator:
    """Held-out curves during training, on fixed subsets of the validation and test pairs."""

    def __init__(self, data: PreferenceData, pairs: int | None) -> None:
        if data.val is None:
            raise ValueError("eval_every needs a validation split: build the data with make_preference_data")
        self.splits = {"val": data.val, "test": data.test}
        self.n = {k: held_out_size(s, pairs) for k, s in self.splits.items()}
        self.x = {k: answers(s, self.n[k]) for k, s in self.splits.items()}
        self.h0 = {k: pretrained_features(data, x) for k, x in self.x.items()}
        self.features = {k: SharedInputFeatures(data, x) for k, x in self.x.items()}
        self.drift: torch.Tensor | None = None  # h − h0 of the runs, a buffer reused between evaluations
        self.true_val = self.h0["val"] @ data.true_head
        self.u = data.true_head

    def __call__(self, layout, flat: torch.Tensor, offset: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every evaluation curve's value now, for the runs stacked in ``flat`` (laid out by ``layout``)."""
        out: dict[str, torch.Tensor] = {}
        w = layout.head(flat)
        with torch.no_grad():
            for k, x in self.x.items():
                h = self.features[k](layout.backbone(flat)) if layout.names else self.h0[k]
                for m, v in split_stats(rewards(h, w, offset), self.n[k]).items():
                    out[f"{k}_{m}"] = v
                if k == "val":
                    if layout.names:
                        if self.drift is None or self.drift.shape[0] < len(h):
                            self.drift = torch.empty_like(h)
                        drift = rewards(torch.sub(h, self.h0[k], out=self.drift[: len(h)]), w, torch.zeros(len(w)))
                    else:
                        drift = torch.zeros(len(w), len(x))
                    out["drift_corr"] = _corr(drift, self.true_val)
                    out["drift_std"] = drift.std(1)
            out["head_cos"] = (w @ self.u) / (w.norm(dim=1) * self.u.norm())
        return out


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of a (R, N) with b (N,); NaN for a constant row."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean()
    return (a @ b) / (a.norm(dim=1) * b.norm())
