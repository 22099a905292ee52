"""rmlib.utils.extras: one answer to "is this optional extra installed?", naming the extra and its pip command."""

import sys

from rmlib.utils.extras import Extra

EXTRA = Extra("demo", {"json": "json-pkg", "rmlib_no_such_module": "no-such-package"})


def test_missing_lists_pypi_names_of_absent_modules():
    assert EXTRA.missing() == ["no-such-package"]
    assert Extra("demo", {"json": "json-pkg"}).missing() == []


def test_a_blocked_or_broken_module_counts_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "json", None)  # what a failed import leaves behind
    assert EXTRA.missing() == ["json-pkg", "no-such-package"]


def test_message_names_the_extra_and_the_command():
    message = EXTRA.message("Skipping the demo")
    assert message == ('Skipping the demo: no-such-package not installed (the [demo] extra); '
                       'to install: pip install -e ".[demo]"')
    assert EXTRA.message("x", missing=[]) is None
    assert "a, b not installed" in EXTRA.message("x", missing=["a", "b"])
    assert Extra("real,trainer", {}).install == 'pip install -e ".[real,trainer]"'

