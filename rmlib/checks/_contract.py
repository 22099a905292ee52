"""The contract every worksheet checker shares: each one probes a learner's function with its own seeded inputs.

Every checker takes the learner's function and

- prints one line and returns ``True`` when the answer is right;
- raises ``AssertionError`` with a hint naming the likely mistake when it is wrong — and only
  ``AssertionError``: a crash of the learner's code is reported as "your function raised X when
  called as …", and anything the learner returns that the checker cannot even use (a wrong type,
  shape or dtype) is a failed check with a hint, never a crash of the checker;
- prints "not implemented yet" and returns ``False`` while the function is still the untouched stub,
  so Run All on a fresh worksheet runs from top to bottom.

Every outcome is also kept as a structured record (``RECORDS``, read by ``scoreboard()``) and, inside
a Jupyter kernel, displayed as a MIME bundle of type ``application/vnd.rmlib.check+json`` next to its
``text/plain`` line. The gradebook (``python -m tools grade``) reads those bundles from the outputs
of the executed notebook; nothing parses printed text.

Mechanisms every checker gets from ``_checker`` (a new checker uses them by calling the helpers below):

- **Fresh probes.** Each call draws a fresh probe seed (``secrets``), or takes ``seed=`` (replay) or the
  environment variable ``RMLIB_CHECK_SEED``; ``_probe_generator(k)`` gives the k-th seeded generator of
  this call and ``_probe_seed()`` the seed itself. The seed is kept in the record, and a failure whose
  probes came from it says how to replay them: ``check_x(x, seed=N)``. torch's global generator is
  seeded with it too, inside ``torch.random.fork_rng``, so the notebook's random state is left alone.
- **Crashes.** ``_call`` turns any exception of the answer, including ``SystemExit`` and every other
  ``BaseException`` except ``KeyboardInterrupt``, into a failed check saying how it was called.
- **Inputs.** ``_call`` hands the answer the real input tensors and fails when it changed one in place.
- **Global state.** torch's default dtype, grad mode, deterministic-algorithms flag and anomaly mode,
  and numpy's and Python's global random state are compared before and after the check; a change is
  undone and, unless the check already failed, is itself a failure naming it.
- **Not attempted.** Only an untouched stub (a body that is exactly ``raise NotImplementedError``, as
  ``tools.exercises`` generates it) is "not attempted"; a ``NotImplementedError`` raised by a finished
  answer is a failed check.
- **Signed records.** When the gradebook runs a submission it hands the kernel a per-run key in the
  environment variable ``RMLIB_GRADE_KEY`` (read once at import, then removed from ``os.environ``);
  every record is then signed with an HMAC over its content (``record_signature``), and the gradebook
  trusts only records whose signature it can verify.
- **Evidence-based hints.** ``_diagnose`` names a wrong formula only when that formula reproduces the
  answer on every probe; otherwise the failure shows the failing probe and the expected value.
"""

from __future__ import annotations

import dis
import functools
import hashlib
import hmac
import inspect
import json
import math
import numbers
import os
import random
import secrets
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

import numpy as np
import torch


CHECK_SEED = 1234  # the fixed part of every probe seed (see _probe_generator)
MIME_TYPE = "application/vnd.rmlib.check+json"
RECORD_VERSION = 2  # 2: records carry the probe seed and, under the gradebook, a signature
KEY_ENV = "RMLIB_GRADE_KEY"  # set by `python -m tools grade` in the kernels it starts, and only there
SEED_ENV = "RMLIB_CHECK_SEED"  # replay every check of a kernel with one probe seed
# Read once and taken out of the environment, so that neither a later os.environ lookup nor a
# subprocess of the answer sees it (what this does not protect against: README, "Collect and grade").
_KEY = os.environ.pop(KEY_ENV, "").encode()
STATUSES = ("passed", "failed", "not attempted")  # what a checker can record; the gradebook adds error, timeout


@dataclass(frozen=True)
class Task:
    """One checked task: its name (the learner's function), its checker and the module (worksheet) it belongs to."""

    name: str
    checker: str
    module: str


TASKS: dict[str, Task] = {}  # every task with a checker, in definition order (= worksheet order)
RECORDS: dict[str, dict] = {}  # the latest outcome of each task checked in this Python process


class _NotImplementedYet(Exception):
    """The learner's function is still the untouched stub."""


# The bytecode of the generated stub: a body that is exactly `raise NotImplementedError` (or `...()`),
# whatever the docstring and comments around it.
_STUB_OPS = {"RESUME", "NOP", "CACHE", "LOAD_GLOBAL", "PUSH_NULL", "PRECALL", "CALL", "RAISE_VARARGS"}


def _is_stub(fn: Any) -> bool:
    """True for an untouched stub: a plain function whose whole body is ``raise NotImplementedError``."""
    return _is_stub_code(getattr(fn, "__code__", None))


def _is_stub_code(code: Any) -> bool:
    if code is None or getattr(code, "co_names", None) != ("NotImplementedError",):
        return False
    try:
        ops = [i.opname for i in dis.get_instructions(code)]
    except Exception:  # an unusual code object: not the generated stub
        return False
    return ops.count("RAISE_VARARGS") == 1 and set(ops) <= _STUB_OPS


def _stub_in_traceback(tb: Any) -> str:
    """The name of a stub function the traceback passed through (a task not done yet), or ""."""
    while tb is not None:
        code = tb.tb_frame.f_code
        if _is_stub_code(code):
            return code.co_name
        tb = tb.tb_next
    return ""


def _not_implemented_failure(fn: Callable, exc: BaseException, called_as: str) -> NoReturn:
    """A finished answer raised NotImplementedError: a failure, saying which stub it came from if any."""
    stub = _stub_in_traceback(exc.__traceback__)
    if stub:
        _fail(f"your function {getattr(fn, '__name__', '')} calls {stub}, which is still the stub "
              f"(raise NotImplementedError)\n  when called as {called_as}\n  hint: finish {stub} first")
    _fail(f"your function {getattr(fn, '__name__', '')} raised NotImplementedError{': ' + str(exc) if str(exc) else ''}"
          f"\n  when called as {called_as}\n  hint: only the untouched stub counts as \"not attempted\"; "
          "a finished answer handles every input the task describes")


# ------------------------------------------------------------------------------------------ own implementations

# What a task asks the learner to write, where rmlib has it (module:name). An answer that reaches one of
# these (a call, an alias, an import inside the function, or another function of the notebook that does)
# has not written it. Only these: helpers a worksheet provides for other purposes (rmlib.theory's
# variance_with_stderr, sample_hidden_states, torch itself) stay allowed.
OWN_IMPLEMENTATIONS: dict[str, tuple[str, ...]] = {
    "predict_reward_variance": ("rmlib.theory:isotropic_reward_variance", "rmlib.theory:predicted_reward_variance"),
    "mc_reward_variance": ("rmlib.theory:sample_initial_rewards",),
    "layer_init": ("rmlib.init:layer_init",),
    "score_head_std": ("rmlib.init:score_head_std",),
    "bradley_terry_loss": ("rmlib.losses:bradley_terry_loss", "rmlib.normalize:centred_bt_loss"),
    "relative_error": ("rmlib.checks._contract:relative_error",),
    "adam_first_step": ("rmlib.theory:adam_step",),
    "reward_gain_bias": ("rmlib.normalize:RewardNormalizer", "rmlib.normalize:normalize_rewards"),
    "normalise_on_reference": ("rmlib.normalize:RewardNormalizer", "rmlib.normalize:normalize_rewards"),
}


def _own_targets(task: str) -> dict[int, str]:
    """{id(object): its name} for the task's rmlib implementations (a class: also each of its methods)."""
    import importlib

    targets: dict[int, str] = {}
    for spec in OWN_IMPLEMENTATIONS.get(task, ()):
        module, name = spec.split(":")
        obj = getattr(importlib.import_module(module), name)
        targets[id(obj)] = name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                member = getattr(member, "__func__", member)  # classmethod / staticmethod
                if inspect.isfunction(member):
                    targets[id(member)] = f"{name}.{attr}"
    return targets


def _from_rmlib(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "rmlib" or module.startswith("rmlib.")


def _codes(code: Any) -> list:
    """A code object and every code object nested in it (lambdas, comprehensions, inner functions)."""
    found, stack = [], [code]
    while stack:
        c = stack.pop()
        found.append(c)
        stack += [k for k in c.co_consts if inspect.iscode(k)]
    return found


def _reached_own_implementation(fn: Any, task: str) -> str:
    """The name of the task's own rmlib implementation the answer reaches, or "".

    Reads the answer's bytecode, not its behaviour: the global names, closure cells, default values and
    modules imported inside it, followed through attributes named in its code (rmlib.init.layer_init),
    and through the other functions of the notebook (its module) it uses, read the same way; a library's
    functions are not read (torch's are many, and cannot reach rmlib). rmlib's own
    functions are not read: passing rmlib's function itself is the gradebook's business (it records
    where the checked function was defined).
    """
    import sys

    targets = _own_targets(task)
    if not targets:
        return ""
    home = getattr(fn, "__module__", None)  # the notebook's module (__main__), or a test's
    queue, seen = [fn], set()
    while queue:
        f = queue.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        hit = targets.get(id(getattr(f, "__func__", f)))
        if hit and f is not fn:  # reached through a partial or a bound method (fn itself: see the docstring)
            return hit
        if isinstance(f, functools.partial):
            queue += [f.func, *f.args, *f.keywords.values()]
            continue
        f = getattr(f, "__func__", f)  # a bound method
        code = getattr(f, "__code__", None)
        if code is None or _from_rmlib(f):
            continue
        names = {n for c in _codes(code) for n in c.co_names}
        env = getattr(f, "__globals__", {})
        roots = [env[n] for n in names if n in env]
        roots += [sys.modules[n] for n in names if n in sys.modules]  # `import rmlib.init` inside the body
        roots += [cell.cell_contents for cell in (f.__closure__ or ()) if _has_contents(cell)]
        roots += list(f.__defaults__ or ()) + list((f.__kwdefaults__ or {}).values())
        level = roots
        for _ in range(4):  # attribute chains such as rmlib.checks._contract.relative_error
            following = []
            for obj in level:
                hit = targets.get(id(obj)) or targets.get(id(getattr(obj, "__func__", None)))
                if hit:
                    return hit
                if isinstance(obj, functools.partial) or (
                        (inspect.isfunction(obj) or inspect.ismethod(obj)) and obj.__module__ == home):
                    queue.append(obj)  # another function of the notebook (not of a library): read it too
                if inspect.ismodule(obj) or inspect.isclass(obj):
                    following += [getattr(obj, n) for n in names if _safe_hasattr(obj, n)]
            level = following
    return ""


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell (a variable not assigned yet)
        return False
    return True


def _safe_hasattr(obj: Any, name: str) -> bool:
    try:
        return hasattr(obj, name)
    except Exception:  # a module or class whose attribute lookup fails: not a way to an implementation
        return False


# ------------------------------------------------------------------------------------------ probe seeds

_CURRENT: dict[str, Any] = {"seed": None, "used": False}


def _fresh_seed() -> int:
    return secrets.randbelow(2**31)


def _probe_seed() -> int:
    """The probe seed of the check running now (fresh on every call unless replayed)."""
    if _CURRENT["seed"] is None:
        raise RuntimeError("_probe_seed() is only available inside a checker")
    _CURRENT["used"] = True
    return _CURRENT["seed"]


def _probe_generator(k: int = 0) -> torch.Generator:
    """The k-th generator of this check's probes: reproducible from the recorded probe seed."""
    return torch.Generator().manual_seed((_probe_seed() * 1_000_003 + CHECK_SEED + k) % 2**63)


# ------------------------------------------------------------------------------------------ global state

def _global_state() -> dict[str, Any]:
    return {
        "torch's default dtype": torch.get_default_dtype(),
        "torch's grad mode": torch.is_grad_enabled(),
        "torch's deterministic-algorithms flag": torch.are_deterministic_algorithms_enabled(),
        "torch's anomaly mode": torch.is_anomaly_enabled(),
        "numpy's global random state": np.random.get_state(),
        "Python's global random state": random.getstate(),
    }


_STATE_HINTS = {
    "torch's default dtype": "torch.set_default_dtype(...) changes every later tensor of the notebook; pass "
                             "dtype=... to the calls that need it instead",
    "torch's grad mode": "torch.set_grad_enabled(False) left autograd off for the rest of the notebook; use "
                         "`with torch.no_grad():` around the lines that need it",
    "torch's deterministic-algorithms flag": "leave torch.use_deterministic_algorithms as the notebook set it",
    "torch's anomaly mode": "leave torch.autograd.set_detect_anomaly as the notebook set it",
    "numpy's global random state": "your function drew from (or seeded) numpy's global generator; draw with torch "
                                   "(the generator you are given, or torch's global generator)",
    "Python's global random state": "your function drew from (or seeded) Python's `random`; draw with torch (the "
                                    "generator you are given, or torch's global generator)",
}


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _restore_state(state: dict[str, Any]) -> list[str]:
    """Put back every global setting that changed; return the names of those that did."""
    now = _global_state()
    changed = [k for k in state if not _same_state(state[k], now[k])]
    torch.set_default_dtype(state["torch's default dtype"])
    torch.set_grad_enabled(state["torch's grad mode"])
    if torch.are_deterministic_algorithms_enabled() != state["torch's deterministic-algorithms flag"]:
        torch.use_deterministic_algorithms(state["torch's deterministic-algorithms flag"])
    torch.autograd.set_detect_anomaly(state["torch's anomaly mode"])
    np.random.set_state(state["numpy's global random state"])
    random.setstate(state["Python's global random state"])
    return changed


# ------------------------------------------------------------------------------------------ signed records

def _canonical(record: dict) -> bytes:
    content = {k: v for k, v in record.items() if k != "signature"}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def record_signature(record: dict, key: bytes) -> str:
    """HMAC-SHA256 of a record's content (every field but ``signature``) under ``key``."""
    return hmac.new(key, _canonical(record), hashlib.sha256).hexdigest()


def record_is_signed_by(record: dict, key: bytes) -> bool:
    """True when ``record`` carries a valid signature under ``key`` (what the gradebook trusts)."""
    signature = record.get("signature")
    return isinstance(signature, str) and hmac.compare_digest(signature, record_signature(record, key))


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # the checkers also run without IPython (plain Python, pytest)
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _emit(record: dict, line: str) -> None:
    """Keep the record; show the line (inside a kernel as a display carrying the structured record)."""
    if _KEY:
        record = {**record, "signature": record_signature(record, _KEY)}
    RECORDS[record["task"]] = record
    if _in_kernel():
        from IPython.display import display

        display({MIME_TYPE: record, "text/plain": line}, raw=True)
    else:
        print(line)


def _hint_pointer(name: str) -> str:
    from rmlib.checks import available_hints, hint_level_max  # the package collects HINTS from every module

    top = min(len(available_hints().get(name, ())), hint_level_max())
    if not top:
        return ""
    more = f"; levels 2–{top} say more" if top > 2 else ("; level 2 says more" if top == 2 else "")
    return f"\n  stuck? rmlib.checks.hint({name!r}) gives a first nudge{more}"


def _checker(name: str) -> Callable[[Callable[[Callable], str]], Callable[..., bool]]:
    """Turn ``check(fn) -> success detail`` into a public checker with the shared contract."""

    def wrap(check: Callable[[Callable], str]) -> Callable[..., bool]:
        module = check.__module__.rsplit(".", 1)[-1]
        TASKS[name] = Task(name=name, checker=check.__name__, module=module)

        @functools.wraps(check)
        def run(fn: Callable, *, seed: int | None = None) -> bool:
            if seed is None:
                seed = int(os.environ[SEED_ENV]) if os.environ.get(SEED_ENV, "").strip() else _fresh_seed()
            record = {"version": RECORD_VERSION, "task": name, "checker": check.__name__, "module": module,
                      "seed": int(seed), "function": _function_name(fn)}
            replay = f"\n  (probe seed {seed}: {check.__name__}({name}, seed={seed}) replays these probes)"
            try:
                if not callable(fn):
                    _fail(f"{check.__name__} expects your function `{name}` itself, got {type(fn).__name__}: "
                          f"write {check.__name__}({name}), without calling {name}")
                if _is_stub(fn):
                    raise _NotImplementedYet
                own = _reached_own_implementation(fn, name)
                if own:
                    who = getattr(fn, "__name__", name).replace("<lambda>", "lambda")
                    _fail(f"your {who} calls rmlib's own {own}; write it yourself "
                          f"(the task is to implement {name}, not to call the course library's version)")
                _CURRENT.update(seed=int(seed), used=False)
                state = _global_state()
                failed = True
                try:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed((int(seed) + CHECK_SEED) % 2**63)
                        detail = check(fn)
                    failed = False
                except (AssertionError, _NotImplementedYet):
                    raise
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # the checker choked on what came back: still the learner's mistake
                    _fail(f"what your function returned could not be checked ({type(exc).__name__}: {exc}); "
                          "compare its type, shape and dtype with the task statement")
                finally:
                    changed = _restore_state(state)
                    if changed and not failed:
                        _fail(f"your function changed {changed[0]} and left it changed: "
                              f"{_STATE_HINTS[changed[0]]} (the check has put it back)")
            except _NotImplementedYet:
                _emit({**record, "status": "not attempted", "message": "not implemented yet"},
                      f"{name}: not implemented yet (replace `raise NotImplementedError` with your code, then rerun)")
                return False
            except AssertionError as exc:
                text = str(exc) + (replay if _CURRENT["used"] else "")
                _emit({**record, "status": "failed", "message": text},
                      f"✗ {name}: not right yet — the hint is in the error below")
                raise AssertionError(text + _hint_pointer(name)) from None
            finally:
                _CURRENT.update(seed=None, used=False)
            _emit({**record, "status": "passed", "message": detail}, f"✓ {name}: {detail}")
            return True

        return run

    return wrap


def _function_name(fn: Any) -> str:
    """Where the checked function was defined, ``module.qualname`` (``__main__.x`` for a notebook cell): the
    gradebook uses it to tell the learner's function from a library's (``check_x(rmlib.x)``)."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _snapshot(args: tuple) -> list[tuple[int, torch.Tensor]]:
    return [(i, a.detach().clone()) for i, a in enumerate(args) if torch.is_tensor(a)]


def _unchanged(a: torch.Tensor, before: torch.Tensor) -> bool:
    if a.shape != before.shape or a.dtype != before.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return torch.equal(a.isnan(), before.isnan()) and torch.equal(a.nan_to_num(), before.nan_to_num())
    return torch.equal(a, before)


def _argument_name(fn: Callable, i: int) -> str:
    try:
        params = list(inspect.signature(fn).parameters)
        return f"`{params[i]}`" if i < len(params) else f"argument {i + 1}"
    except (TypeError, ValueError):
        return f"argument {i + 1}"


def _call(fn: Callable, *args: Any, called_as: str, hint: str | Callable[[BaseException], str] = "",
          may_modify: bool = False) -> Any:
    """Call the learner's function on the real inputs; a crash becomes an AssertionError saying how it was called.

    Tensors are passed as they are and compared afterwards: an answer that changed one in place fails
    (unless ``may_modify``, for a task that works in place). ``hint`` is shown with a crash; a callable
    ``hint(exc)`` returns it for that exception, "" when the exception is no evidence of the mistake it names.
    """
    before = [] if may_modify else _snapshot(args)
    name = getattr(fn, "__name__", "")
    try:
        out = fn(*args)
    except KeyboardInterrupt:
        raise
    except NotImplementedError as exc:
        _not_implemented_failure(fn, exc, called_as)
    except SystemExit as exc:
        raise AssertionError(
            f"your function {name} raised SystemExit ({exc.code!r})\n  when called as {called_as}\n  hint: "
            "sys.exit()/exit()/quit() end the program; return a value, or raise the error the task names"
        ) from None
    except BaseException as exc:  # any crash of the learner's code is a wrong answer, explained
        text = hint(exc) if callable(hint) else hint
        raise AssertionError(
            f"your function {name} raised {type(exc).__name__}: {exc}\n"
            f"  when called as {called_as}" + (f"\n  hint: {text}" if text else "")
        ) from None
    for i, copy in before:
        if not _unchanged(args[i], copy):
            _fail(f"your function {name} changed its input {_argument_name(fn, i)} in place\n  when called as "
                  f"{called_as}\n  hint: compute a new tensor (x = x - m, not x -= m or x.sub_(m)); the caller "
                  "still needs its tensors as they were")
    return out


def _diagnose(matches: list[tuple[bool, str]]) -> str | None:
    """The hint of the first wrong formula that reproduces the answer on every probe (the evidence), else None.

    ``matches`` holds (does this formula reproduce the answer on every probe, and differ from the right
    value on at least one?, hint) per candidate; the caller decides what "reproduces" means.
    """
    return next((hint for ok, hint in matches if ok), None)


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number, a one-element tensor or a one-element numpy array, or a clear failure."""
    if value is None:
        _fail(f"{what} returned None: did you forget the `return` statement?")
    if isinstance(value, (np.ndarray, np.generic)):
        if value.size != 1:
            _fail(f"{what} must return one number, got a numpy array of shape {value.shape}")
        if np.iscomplexobj(value):
            _fail(f"{what} must return a real number, got a complex array")
        value = value.item()
    if torch.is_tensor(value):
        if value.numel() != 1:
            _fail(f"{what} must return one number, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex():
            _fail(f"{what} must return a real number, got a complex tensor")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(f"{what} must return a number, got {type(value).__name__}")
    return float(value)


def _tensor(value: Any, what: str, *, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None,
            device: torch.device | str | None = None, why_dtype: str = "") -> torch.Tensor:
    """``value`` as a tensor honouring the task's contract (shape, dtype, device), or a failure naming the breach."""
    if value is None:
        _fail(f"{what} returned None: did you forget the `return` statement?")
    if not torch.is_tensor(value):
        _fail(f"{what} must return a torch tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        hint = " (transposed?)" if len(shape) == 2 and tuple(value.shape) == tuple(shape)[::-1] else ""
        _fail(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}{hint}")
    if dtype is not None and value.dtype != dtype:
        _fail(f"{what} returned a {_dtype_name(value.dtype)} tensor from {_dtype_name(dtype)} inputs: "
              + (why_dtype or "compute in the inputs' dtype"))
    if device is not None and value.device != torch.device(device):
        _fail(f"{what} returned a tensor on {value.device}, expected {torch.device(device)} (where the inputs live)")
    return value


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _expect_raises(fn: Callable, args: tuple, called_as: str, why: str, error: type[Exception] = ValueError) -> None:
    """The learner's guard must raise ``error`` on this bad input; anything else is a failure saying what to do."""
    try:
        out = fn(*args)
    except KeyboardInterrupt:
        raise
    except error:
        return
    except NotImplementedError as exc:
        _not_implemented_failure(fn, exc, called_as)
    except BaseException as exc:  # the wrong kind of failure (SystemExit included) is a wrong answer, explained
        _fail(f"your function raised {type(exc).__name__}: {exc}\n  when called as {called_as}\n  hint: check the "
              f"input yourself and raise {error.__name__} with a message saying what is wrong ({why})")
    _fail(f"{called_as} returned {out!r} instead of raising {error.__name__}: {why}")


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def relative_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """cs231n's gradient-check metric: max |x − y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = x.detach().double(), y.detach().double()
    return (x - y).abs().div((x.abs() + y.abs()).clamp_min(1e-8)).max().item()
