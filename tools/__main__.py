"""``python -m tools COMMAND [ARGS]``: one entry point for every course tool (see ``tools/__init__.py``)."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "launch": ("tools.launch", "stamp Colab/Binder badges, the Colab setup cell, README's lesson table (from the catalogue), binder/"),
    "exercises": ("tools.exercises", "generate exercises/ from solutions/"),
    "site": ("tools.site", "execute every notebook (cached) and build the course website in _build/html"),
    "grade": ("tools.grade", "run submitted worksheets, write a gradebook CSV and print a summary table"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        listing = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: python -m tools COMMAND [ARGS]  (COMMAND --help for its options)\n\ncommands:\n{listing}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
