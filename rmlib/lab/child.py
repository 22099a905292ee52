"""A computation started in a child process now and collected later: lesson 07's ZeRO-3 experiment and
lesson 08's full-training runs start in a lesson's first cell, so that they run on a second core while
the lesson does, and are read where the lesson needs them.

The child prints one line, ``tag`` followed by JSON (:func:`report`), among whatever its libraries print;
:meth:`ChildRun.measured` waits for it once and returns that JSON, or raises with the tail of the child's
output.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import weakref
from typing import Any


class ChildRun:
    """A child process, started; :meth:`measured` waits for it (once) and returns the values it reported.

    ``what`` names it in errors; ``timeout`` counts from the start and only stops a child that hangs. A run
    dropped before it is collected (a notebook's first cell run again) stops its child.
    """

    def __init__(self, command: list[str], tag: str, what: str, timeout: float,
                 env: dict[str, str] | None = None) -> None:
        self.command, self.tag, self.what, self.timeout = command, tag, what, timeout
        # A file, not a pipe, for the child's output: nothing reads it until measured(), and a full pipe
        # would stop the child.
        self.log = tempfile.TemporaryFile("w+", prefix="rmlib-child-")
        self.started = time.time()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True, env=env)
        self._measured: dict[str, Any] | None = None
        weakref.finalize(self, self.process.kill)  # a no-op once the child has ended

    def measured(self) -> dict[str, Any]:
        """The child's reported values, with ``seconds`` from the start to the child's own end."""
        if self._measured is None:
            self._measured = self._wait()
        return self._measured

    def _tail(self, lines: int = 25) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-lines:])

    def _wait(self) -> dict[str, Any]:
        try:  # a child that has already ended is reaped at once, however late this is called
            self.process.wait(timeout=max(self.started + self.timeout - time.time(), 0.0))
        except subprocess.TimeoutExpired as err:
            self.process.kill()
            self.process.wait()
            raise TimeoutError(f"the {self.what} child process did not finish in {self.timeout:.0f} s "
                               f"({' '.join(self.command)}); its last output:\n{self._tail()}") from err
        self.log.seek(0)
        lines = [line for line in self.log.read().splitlines() if line.startswith(self.tag)]
        if self.process.returncode != 0 or len(lines) != 1:
            raise RuntimeError(f"the {self.what} child process failed (exit code {self.process.returncode}):\n"
                               f"{self._tail()}")
        measured = json.loads(lines[0][len(self.tag):])
        # The child's clock when it was done, not when measured() was called.
        measured["seconds"] = measured.pop("finished") - self.started
        return measured


def report(tag: str, values: dict[str, Any]) -> None:
    """In the child: print the one tagged line of JSON that :meth:`ChildRun.measured` reads, with the time."""
    print(tag + json.dumps({**values, "finished": time.time()}), flush=True)
