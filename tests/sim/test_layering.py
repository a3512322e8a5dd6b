"""Layering (DESIGN Sec. 1): ``sim`` imports nothing from ``agent`` or ``training``, lazily or not."""

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[2] / "sim"


def imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def test_sim_imports_nothing_from_agent_or_training():
    bad = {f"{p.relative_to(SIM.parent)}: {m}" for p in SIM.rglob("*.py") for m in imported_modules(p)
           if m.split(".")[0] in ("agent", "training")}
    assert not bad, sorted(bad)
