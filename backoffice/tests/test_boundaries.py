"""The admin's room: backoffice holds the whole admin; orders and payments hold none of it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_orders_and_payments_import_no_admin_and_name_no_admin_url():
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("orders", "payments")
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts
        and (
            any(name.startswith(("django.contrib.admin", "backoffice")) for name in _imports(path))
            or '"admin:' in path.read_text()
        )
    ]

    assert offenders == []


def test_orders_payments_and_the_shops_templates_hold_no_admin_module_template_or_style():
    found = [
        str(path.relative_to(ROOT))
        for package in ("orders", "payments", "templates")
        for path in (ROOT / package).rglob("*admin*")
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
    ]

    assert found == []
