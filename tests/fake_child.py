"""A stand-in for the child process of rmlib.lab.child.ChildRun (lessons 07 and 08 start one)."""

import subprocess

from rmlib.lab import child


class FakeChild:
    """Writes its output into the file it is given at once; then has exited, or hangs until killed."""

    def __init__(self, command, stdout, returncode=0, output="", hangs=False):
        self.command, self.returncode, self.hangs, self.killed = command, returncode, hangs, False
        stdout.write(output)
        stdout.flush()

    def wait(self, timeout=None):
        if self.hangs and not self.killed:
            raise subprocess.TimeoutExpired("child", timeout)
        return self.returncode

    def kill(self):
        self.killed = True


def fake_children(monkeypatch, **kwargs) -> list:
    """Make every ChildRun start a FakeChild(**kwargs); returns the list of those started."""
    started = []
    monkeypatch.setattr(child.subprocess, "Popen", lambda command, stdout, **_: started.append(
        FakeChild(command, stdout, **kwargs)) or started[-1])
    return started


def fake_clock(monkeypatch, *times: float) -> None:
    """ChildRun's clock: ``times`` in turn, then the last one for ever."""
    it = iter(times)
    last = [times[-1]]
    monkeypatch.setattr(child.time, "time", lambda: next(it, last[0]))
