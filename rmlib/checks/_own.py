"""Does an answer call rmlib's own implementation of its task? Read from its bytecode, then watched as it runs.

``OWN_IMPLEMENTATIONS`` names, per task, where rmlib has what the learner is asked to write;
``_reached_own_implementation`` follows the answer's global names, closures, defaults, imports and the other
functions of its notebook to see whether it reaches one of them. Bytecode cannot see a name computed at run
time (``getattr(rmlib.theory, "isotropic_" + "reward_variance")``), so ``_Watch`` also watches each call of
the answer: a profile hook notes when one of those implementations starts, and when the answer reads the
call stack (where the checker's expected values live) or removes the hook.
"""

from __future__ import annotations

import _thread
import decimal
import fractions
import functools
import importlib
import inspect
import itertools
import os
import sys
import threading
from typing import Any, Callable

import numpy as np
import torch
import torch.utils._device



_AUTOGRAD_TRANSFORMS = ("grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "linearize")

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
    # The task is to simplify Adam's first step on paper; running torch's Adam skips exactly that.
    "adam_first_step": ("rmlib.theory:adam_step", "torch.optim:Adam", "torch.optim:AdamW", "torch.optim.adam:adam"),
    "reward_gain_bias": ("rmlib.normalize:RewardNormalizer", "rmlib.normalize:normalize_rewards"),
    "normalise_on_reference": ("rmlib.normalize:RewardNormalizer", "rmlib.normalize:normalize_rewards"),
    # "By hand" rules out autograd: torch.func's transforms run it under another name and inference mode does
    # not stop them, nor does it reach a thread the answer starts (grad mode is per thread); found by student
    # attacks. torch.autograd.functional and Tensor.backward end in torch.autograd's grad or backward.
    "bradley_terry_grad": (*(f"torch.func:{t}" for t in _AUTOGRAD_TRANSFORMS), "torch.autograd:grad",
                           "torch.autograd:backward", "torch.autograd.forward_ad:make_dual",
                           "torch.autograd.forward_ad:unpack_dual",
                           # a graph to take apart by hand (loss.grad_fn(...)): grad switched on, a leaf made
                           "torch.autograd.grad_mode:enable_grad", "torch.nn.parameter:Parameter"),
    "difference_std": ("rmlib.theory:reward_difference_std",),
}
# Tasks where a whole package is the implementation: any of torch.optim's optimizers takes Adam's first step
# (Adamax's first step is Adam's; found by a student attack).
OWN_PACKAGES: dict[str, tuple[str, ...]] = {"adam_first_step": ("torch.optim",)}
# Kernels that are the task itself, told by a part of their name and reached directly or through torch.ops: an
# autograd backward kernel (torch.ops.aten.softplus_backward) is autograd, torch._fused_adam_ is Adam's step.
OWN_KERNELS = {"bradley_terry_grad": ("backward", "requires_grad_"), "adam_first_step": ("_fused_adam",)}


def _own_targets(task: str) -> dict[int, str]:
    """{id(object): its name} for the task's rmlib implementations (a class: also each of its methods)."""


    targets: dict[int, str] = {}
    for spec in OWN_IMPLEMENTATIONS.get(task, ()):
        module, name = spec.split(":")
        obj = getattr(importlib.import_module(module), name)
        name = _label(module, name)
        targets[id(obj)] = name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                member = getattr(member, "__func__", member)  # classmethod / staticmethod
                if inspect.isfunction(member):
                    targets[id(member)] = f"{name}.{attr}"
    return targets


def _label(module: str, name: str) -> str:
    """How a message names an implementation: rmlib's by its name, torch's with its module (torch.func.grad)."""
    return f"{module}.{name}" if module.split(".")[0] == "torch" else name


def _own_codes(task: str) -> dict[Any, str]:
    """{code object: its name} for the task's implementations, undecorated: what ``_Watch`` looks out for.

    Undecorated because a decorator's wrapper code is shared (every torch optimizer's ``step`` runs the same
    wrapper); the code underneath is the implementation's own.
    """


    codes: dict[Any, str] = {}
    for spec in OWN_IMPLEMENTATIONS.get(task, ()):
        module, name = spec.split(":")
        obj = getattr(importlib.import_module(module), name)
        name = _label(module, name)
        members = [(name, obj)]
        if inspect.isclass(obj):
            members += [(f"{name}.{attr}", getattr(m, "__func__", m)) for attr, m in vars(obj).items()]
        for label, member in members:
            code = getattr(inspect.unwrap(member), "__code__", None) if callable(member) else None
            if code is not None:
                codes.setdefault(code, label)
    return codes


# Bound once, when the checks are imported (before any answer cell runs): an answer that later replaces
# sys.setprofile or threading.setprofile by name does not switch the watch off.
_SYS_SETPROFILE, _SYS_GETPROFILE = sys.setprofile, sys.getprofile
_SYS_SETPROFILE_ALL = getattr(sys, "_setprofileallthreads", None)  # Python 3.12+: every thread, running or not
_THREADING_SETPROFILE, _THREADING_GETPROFILE = threading.setprofile, threading.getprofile
_MONITORING = getattr(sys, "monitoring", None)  # Python 3.12+
_TORCH_MODES = (torch._C._len_torch_function_stack, torch._C._len_torch_dispatch_stack)
_POP_TORCH_MODES = (torch._C._pop_torch_function_stack, torch._C._pop_torch_dispatch_stack)


class _Watch:
    """Watch one call of an answer: which of the task's implementations started, and whether it read the stack.

    A profile hook (``sys.setprofile``, ``threading.setprofile`` for threads the answer starts, and on Python
    3.12+ ``threading.setprofile_all_threads`` for threads started before), on only
    while the answer runs, so the checker's own reference computations are not watched, and put back as it
    was afterwards. Calls that read the stack, switch a hook or start code the profile hook cannot follow are
    also seen by an audit hook (``sys.addaudithook``): it cannot be removed, and it sees a call however it is
    made, through ``functools.partial``, ``map`` or ``ctypes`` too. What the answer returns is turned into
    plain numbers, tuples and copied tensors while the hook is still on: a float subclass whose ``__float__``
    calls rmlib later, an int that equals everything, or code left behind to fill a returned tensor in later
    would otherwise run outside the watch; so would a torch mode or a sys.monitoring tool left on. What the
    watch notes stays noted even if the answer catches every exception, and ``failure()`` turns it into the
    message of a failed check. A stack read counts when the answer's own code makes it (directly, or through
    ``inspect`` or ``traceback``), not when a library looks at its caller (``logging``, ``namedtuple``,
    torch's seeding). Not watched: frames reached through an exception's traceback (pure stack tricks;
    TEACHING.md).
    """

    # Compared by identity: a bound builtin method (a list's append) cannot be hashed. The audit hook sees the
    # others; sys.getprofile has no audit event.
    _WATCHED_BUILTINS = ((sys.getprofile, "sys.getprofile"),)
    # sys.monitoring (3.12+) runs its callbacks where no profile hook reaches, and raises no audit event
    _MONITORING_CALLS = tuple(getattr(_MONITORING, f) for f in (
        "use_tool_id", "register_callback", "set_events", "set_local_events") if _MONITORING)
    _STACK_MODULES = {"inspect", "traceback"}
    # Code the hook cannot follow: another process, a thread not started through `threading` (whose threads get
    # the hook from threading.setprofile), or a trace function (the interpreter turns profiling off while one
    # runs). Counted from any caller: no worksheet answer needs them. These have no audit event before 3.12
    # (_thread) or none at all (multiprocessing's fork_exec), so the profile hook looks for them.
    _ESCAPES = tuple((f, label) for f, label in (
        (_thread.start_new_thread, "_thread.start_new_thread"),
        (getattr(_thread, "start_joinable_thread", None), "_thread.start_joinable_thread"),
        (getattr(sys.modules.get("_posixsubprocess"), "fork_exec", None), "subprocess"),
        (getattr(sys.modules.get("_winapi"), "CreateProcess", None), "subprocess")) if f is not None)
    _AUDIT_STACK = {"sys._getframe": "sys._getframe", "sys._current_frames": "sys._current_frames"}
    _THREAD_STARTS = {"_thread.start_new_thread", "_thread.start_joinable_thread"}  # audited from 3.12 / 3.13
    _AUDIT_ESCAPES = {"sys.settrace": "sys.settrace", "_thread.start_new_thread": "_thread.start_new_thread",
                      "_thread.start_joinable_thread": "_thread.start_joinable_thread",
                      "sys.addaudithook": "sys.addaudithook",
                      "os.fork": "os.fork", "os.forkpty": "os.forkpty", "os.system": "os.system",
                      "os.posix_spawn": "os.posix_spawn", "os.exec": "os.exec", "os.spawn": "os.spawn",
                      "os.startfile": "os.startfile", "subprocess.Popen": "subprocess"}
    _PROFILE_CODES = {f.__code__: f"threading.{f.__name__}" for f in (
        threading.setprofile, threading.getprofile, getattr(threading, "setprofile_all_threads", None)) if f is not None}
    _TRACE_CODES = {f.__code__: f"threading.{f.__name__}" for f in (
        threading.settrace, getattr(threading, "settrace_all_threads", None)) if f is not None}
    # threading's own calls: a thread it starts puts the hook on itself (3.10/3.11: sys.setprofile), and
    # Thread.start starts the thread with _thread (an event of its own on 3.12+)
    _THREADING_CALLS = {threading.Thread._bootstrap_inner.__code__, threading.Thread.start.__code__}

    def __init__(self, task: str, fn: Any = None):
        self.codes = _own_codes(task)
        # rmlib's function passed itself is the gradebook's business, as in _reached_own_implementation
        self.codes.pop(getattr(inspect.unwrap(fn), "__code__", None) if callable(fn) else None, None)
        self.answer_globals = {id(g) for g in (_globals_of(fn), getattr(sys.modules.get("__main__"), "__dict__", None))
                               if g is not None}
        self.own_dirs = tuple(os.path.dirname(importlib.import_module(m).__file__) + os.sep
                              for m in OWN_PACKAGES.get(task, ()))
        self.kernels = OWN_KERNELS.get(task, ())
        self.reached = ""
        self.stack_read = ""
        self.escape = ""
        self.odd_return = ""
        self.hook = self._hook  # one bound method, installed and compared by identity

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def watched(*args: Any, **kwargs: Any) -> Any:
            previous, previous_threads = _SYS_GETPROFILE(), _THREADING_GETPROFILE()
            modes, tools = [count() for count in _TORCH_MODES], self._monitoring_tools()
            _THREADING_SETPROFILE(self.hook)  # read by every thread `threading` starts
            if _SYS_SETPROFILE_ALL:  # Python 3.12+: also threads started before the check
                _SYS_SETPROFILE_ALL(self.hook)
            else:
                _SYS_SETPROFILE(self.hook)
            _ACTIVE.append(self)  # after the hooks are on: putting them on is the watch's own call
            try:
                return self._plain(fn(*args, **kwargs))
            finally:
                _ACTIVE.remove(self)
                _SYS_SETPROFILE(previous)  # first: what follows is the watch's own code, unwatched
                if _THREADING_GETPROFILE() is not self.hook and not self.stack_read:  # the answer took it away
                    self.stack_read = "threading.setprofile"
                if _SYS_SETPROFILE_ALL:
                    _SYS_SETPROFILE_ALL(previous)
                _THREADING_SETPROFILE(previous_threads)
                self._no_code_left_behind(modes, tools)
        return watched

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if not self.reached:
                self.reached = self.codes.get(code) or self._reached_by_package(frame)
            if code in self._PROFILE_CODES and not self.stack_read:
                self.stack_read = self._PROFILE_CODES[code]  # only the wrapper sets it, and not while it watches
            if not self.escape:
                self.escape = self._TRACE_CODES.get(code, "")
        elif event == "c_call" and frame.f_code is not _WATCHED_CODE:
            if not self.stack_read:
                for builtin, label in self._WATCHED_BUILTINS:
                    if arg is builtin and self._reads(frame):
                        self.stack_read = label
            if not self.escape:
                for builtin, label in self._ESCAPES:
                    if arg is builtin:
                        if frame.f_code not in self._THREADING_CALLS:
                            self.escape = label
                        elif label.startswith("_thread"):
                            self._thread_gets_the_hook()
                for builtin in self._MONITORING_CALLS:
                    if arg is builtin:
                        self.escape = "sys.monitoring"
            if self.kernels and not self.reached and any(k in getattr(arg, "__name__", "") for k in self.kernels):
                owner = "torch.Tensor" if isinstance(getattr(arg, "__self__", None), torch.Tensor) else "torch"
                self.reached = f"{owner}.{arg.__name__}"  # the task's kernel called directly

    def _no_code_left_behind(self, modes: list, tools: tuple) -> None:
        """A torch mode the answer entered and left on, or a sys.monitoring tool it took, runs its code inside
        the checker's own calls after the watch: taken off, and noted."""
        for count, pop, before in zip(_TORCH_MODES, _POP_TORCH_MODES, modes):
            if count is _TORCH_MODES[0] and count() == before + 1 and _default_device_mode():
                continue  # torch.set_default_device: a global setting, put back with a hint (_probes)
            while count() > before:
                pop()
                self.escape = self.escape or "a torch function or dispatch mode left on"
        if self._monitoring_tools() != tools:
            self.escape = self.escape or "sys.monitoring"

    @staticmethod
    def _monitoring_tools() -> tuple:
        return tuple(_MONITORING.get_tool(t) for t in range(6)) if _MONITORING else ()

    def _audited(self, event: str, frame: Any) -> None:
        """An audit event raised while the answer runs; ``frame`` is the Python frame that made the call."""
        if event in self._AUDIT_STACK and self._reads(frame) and not self.stack_read:
            self.stack_read = self._AUDIT_STACK[event]
        elif event == "sys.setprofile" and frame.f_code not in self._THREADING_CALLS and not self.stack_read:
            self.stack_read = "sys.setprofile"  # the watch puts its hooks on and off while it is not active
        elif event in self._AUDIT_ESCAPES and not self.escape:
            if event == "sys.addaudithook" and not self._answers(frame):
                return  # a library the answer imports may add one (filelock does on Python 3.12+)
            if frame.f_code not in self._THREADING_CALLS:
                self.escape = self._AUDIT_ESCAPES[event]
            elif event in self._THREAD_STARTS:
                self._thread_gets_the_hook()

    def _thread_gets_the_hook(self) -> None:
        """threading starts a thread: it puts on the hook threading holds, which the answer may have replaced
        without a call (``threading._profile_hook = None``)."""
        if _THREADING_GETPROFILE() is not self.hook and not self.escape:
            self.escape = "a thread started without the watch's hook"

    def _reads(self, frame: Any) -> bool:
        """Whether a stack read made in ``frame`` is the answer's own (directly, or through inspect or traceback)."""
        return self._answers(frame) or (
            frame is not None and _module_name(frame) in self._STACK_MODULES and self._answers(frame.f_back))

    def _reached_by_package(self, frame: Any) -> str:
        """A task's whole package of implementations (torch.optim), or an aten backward kernel via torch.ops."""
        code = frame.f_code
        if self.own_dirs and str.startswith(code.co_filename, self.own_dirs):
            return f"torch.optim.{getattr(code, 'co_qualname', code.co_name)}"
        if self.kernels and code in _OP_CALLS:
            op = str(frame.f_locals.get("self", ""))
            if any(k in op for k in self.kernels):
                return f"torch.ops.{op}"
        return ""

    def _answers(self, frame: Any) -> bool:
        return frame is not None and id(frame.f_globals) in self.answer_globals

    def _plain(self, out: Any) -> Any:
        """``out`` as builtin numbers, tuples, lists and plain tensors (notes any other type it cannot convert)."""
        kind = type(out)
        if kind in _PLAIN or kind in _NUMPY_SCALARS:
            return out
        if kind is torch.Tensor:  # a copy: code the answer left behind cannot fill it in after the watch
            return out.clone()
        if isinstance(out, torch.nn.Module):
            return out if _genuine_module(out) else self._odd(f"{kind.__module__}.{kind.__qualname__}", " (a layer "
                                                              "whose class or parameters were replaced)")
        if kind is np.ndarray:
            return out.copy() if out.dtype != object else self._odd("numpy.ndarray", " of dtype object")
        if isinstance(out, (tuple, list)):
            items = [self._plain(x) for x in out]
            return tuple(items) if isinstance(out, tuple) else items
        for base in (bool, int, float, complex):  # a subclass: its own conversion runs here, under the watch
            if isinstance(out, base):
                return base(out) if base is not int else int.__index__(out)
        if isinstance(out, (decimal.Decimal, fractions.Fraction)):
            return float(out)
        if isinstance(out, torch.Tensor):
            plain = out.as_subclass(torch.Tensor)
            if type(plain) is torch.Tensor:
                return plain.clone()
        if isinstance(out, np.ndarray) and out.dtype != object:
            return np.array(out)
        if hasattr(out, "__iter__") and not isinstance(out, (str, bytes, dict)):
            # a dataclass that unpacks to its fields, say: the tuple it unpacks to (as `gain, bias = …` would)
            items = list(itertools.islice(iter(out), 1001))
            if len(items) <= 1000:
                return tuple(self._plain(x) for x in items)
        return self._odd(f"{kind.__module__}.{kind.__qualname__}")

    def _odd(self, kind: str, why: str = "") -> Any:
        self.odd_return = self.odd_return or kind + why
        return None

    def failure(self, who: str, name: str) -> str:
        """The message of the failed check for what was noted, or "" when nothing was."""
        if self.reached:
            return _own_message(who, name, self.reached)
        if self.stack_read:
            return (f"your {who} calls {self.stack_read}, which reads the checker's frames or its watch, or stops the "
                    f"checker watching; compute {name} from its inputs")
        if self.escape:
            return (f"your {who} starts code the check cannot watch ({self.escape}: code that runs where the "
                    f"watch does not reach, such as another process or a trace function); compute {name} in the "
                    "function itself")
        if self.odd_return:
            return (f"your {who} returned an object of type {self.odd_return}: return what the task names (a number, "
                    "a tensor, a pair of them, or the layer), not an object of another class")
        return ""


def _op_calls() -> set:
    """The code of torch.ops' call paths (torch.ops.aten.x(...) and .default(...)), where an op's name is seen."""
    from torch._ops import OpOverload, OpOverloadPacket

    return {getattr(c.__call__, "__code__", None) for c in (OpOverload, OpOverloadPacket)} - {None}


_OP_CALLS = _op_calls()


def _default_device_mode() -> bool:
    """Whether the innermost torch function mode is one torch.set_default_device leaves on (torch's own code:
    no attribute of the answer's, such as its own __torch_function__)."""
    depth = torch._C._len_torch_function_stack()
    mode = torch._C._get_function_stack_at(depth - 1) if depth else None
    return type(mode) is torch.utils._device.DeviceContext and all(v is None or type(v) is torch.device for v in vars(mode).values())


def _module_name(frame: Any) -> Any:
    """The module a frame runs in, read without calling its globals' methods (a dict subclass's ``get`` is the
    answer's code, which would run inside the hook, unwatched)."""
    return dict.get(frame.f_globals, "__name__")


def _genuine_module(layer: torch.nn.Module) -> bool:
    """Whether a returned layer is still torch's class with plain parameters: a class swapped by the answer could
    run code when the checker reads ``.weight``, after the watch."""
    kind, state = type(layer), vars(layer)
    params = state.get("_parameters")
    return (kind.__module__.startswith("torch.nn.")  # torch's class itself, not one that borrows its names:
            and getattr(sys.modules.get(kind.__module__), kind.__qualname__, None) is kind
            and type(params) is dict and not any(hasattr(kind, k) or k in params for k in state)  # no shadows
            and all(p is None or (type(p) is torch.nn.Parameter and not vars(p)) for p in dict.values(params)))


def _globals_of(fn: Any) -> dict | None:
    """The globals of the module an answer was written in (a partial's function, a callable object's class)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = inspect.unwrap(getattr(fn, "__func__", fn)) if callable(fn) else fn
    if not hasattr(fn, "__globals__") and callable(fn):
        fn = getattr(type(fn), "__call__", None)
    return getattr(fn, "__globals__", None)


_PLAIN = {int, float, bool, complex, str, type(None)}
_NUMPY_SCALARS = set(np.sctypeDict.values())


_WATCHED_CODE = _Watch("")(lambda: None).__code__  # the wrapper's own frame, which puts the hook back
_ACTIVE: list = []  # the watches whose answer is running now
_AUDITING = _thread._local()  # the audit hook's own sys._getframe raises an event: not followed


def _audit(event: str, args: tuple) -> None:
    """Hand an audit event raised while an answer runs to its watch (returns at once otherwise)."""
    if not _ACTIVE or getattr(_AUDITING, "on", False):
        return
    if event not in _Watch._AUDIT_STACK and event not in _Watch._AUDIT_ESCAPES and event != "sys.setprofile":
        return
    _AUDITING.on = True
    try:
        frame = sys._getframe(1)  # the frame that made the call, however it was made
        for watch in tuple(_ACTIVE):
            watch._audited(event, frame)
    finally:
        _AUDITING.on = False


sys.addaudithook(_audit)  # for the life of the process: an audit hook cannot be removed, so no answer can


def _own_message(who: str, name: str, own: str) -> str:
    """What a learner is told whose answer reached ``own``, one of the task's implementations."""
    if own.startswith(("torch.func.", "torch.autograd.", "torch.ops.", "torch.nn.parameter.")) or any(
            k in own for k in OWN_KERNELS["bradley_terry_grad"]):
        return (f"your {who} uses {own}: that is autograd under another name; derive the gradient by hand and "
                "compute it with tensor operations")
    if own.startswith("torch.optim") or "_fused_adam" in own:
        return (f"your {who} runs torch.optim's optimizer code ({own}); simplify Adam's first step on paper and "
                "compute what is left of the gradient yourself")
    return (f"your {who} calls rmlib's own {own}; write it yourself "
            f"(the task is to implement {name}, not to call the course library's version)")


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
