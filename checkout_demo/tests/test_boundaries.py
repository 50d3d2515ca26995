"""The rooms of docs/design.md, enforced: who may import what."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    """Return the top-level package names a module imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(package: str, *, tests: bool = False) -> list[Path]:
    return [
        path
        for path in (ROOT / package).rglob("*.py")
        if tests or "tests" not in path.relative_to(ROOT).parts
    ]


def test_only_the_gateway_imports_stripe():
    importers = {
        str(path.relative_to(ROOT))
        for package in ("orders", "payments", "checkout_demo")
        for path in _modules(package)
        if "stripe" in _imports(path)
    }

    assert importers == {"payments/gateway.py"}


def test_orders_never_imports_payments_or_stripe():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules("orders", tests=True)
        if _imports(path) & {"payments", "stripe"}
    ]

    assert offenders == []


def test_emulator_uses_the_standard_library_only():
    allowed = set(sys.stdlib_module_names) | {"stripe_emulator"}
    foreign = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - allowed)
        for path in _modules("stripe_emulator")
        if _imports(path) - allowed
    }

    assert foreign == {}


def test_orders_imports_django_only():
    allowed = set(sys.stdlib_module_names) | {"django", "orders"}
    foreign = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - allowed)
        for path in _modules("orders")
        if _imports(path) - allowed
    }

    assert foreign == {}
