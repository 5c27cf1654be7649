"""Rules of the house that the code itself must keep."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import sla_daemon

PACKAGE = Path(sla_daemon.__file__).resolve().parent
CORE = PACKAGE / "core"


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "sla_daemon.core." + (node.module or "")))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def test_core_imports_only_the_standard_library_and_itself() -> None:
    """Every module under sla_daemon/core imports only stdlib and sla_daemon.core."""
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for line, module in _imported_modules(path):
            top = module.split(".")[0]
            if module == "sla_daemon.core" or module.startswith("sla_daemon.core."):
                continue
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert offenders == []


def test_core_never_reads_the_clock_or_does_io() -> None:
    """The core takes time as an argument: no now()/today()/open()/print() calls in it."""
    forbidden = {"now", "today", "utcnow", "open", "print", "time", "monotonic"}
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in forbidden:
                    offenders.append(f"{path.name}:{node.lineno} calls {name}()")
    assert offenders == []


def test_adapters_are_built_only_in_the_composition_root() -> None:
    """Outside the adapters only app.py imports them; the service layer may use the store."""
    allowed = {
        "app.py",
        "app_queries.py",
        "app_exports.py",
        "service.py",
        "outbox.py",
        "delivery.py",
        "delivery_batches.py",
        "delivery_failures.py",
        "evaluation.py",
    }
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name in allowed:
            continue
        for line, module in _imported_modules(path):
            if module.startswith("sla_daemon.adapters"):
                offenders.append(f"{path.name}:{line} imports {module}")
    assert offenders == []
