#!/usr/bin/env python3
"""Print the app's size: lines of Python in orders, payments, checkout_demo and backoffice, tests and
migrations apart (the budget the one-house issue set), per app and in all."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("orders", "payments", "checkout_demo", "backoffice")


def app_lines(app: str) -> tuple[int, int]:
    """Return (lines, modules) of an app's Python, tests and migrations apart."""
    files = [
        path
        for path in (ROOT / app).rglob("*.py")
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
    ]
    return sum(len(path.read_text().splitlines()) for path in files), len(files)


def main() -> int:
    total = modules = 0
    for app in APPS:
        lines, count = app_lines(app)
        total, modules = total + lines, modules + count
        print(f"{app:<14} {lines:>6} lines in {count:>3} modules")
    print(f"{'all':<14} {total:>6} lines in {modules:>3} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
