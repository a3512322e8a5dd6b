"""Layering (DESIGN Sec. 1: data flows sim -> training -> agent): ``sim`` imports nothing from
``agent`` or ``training``, and ``training`` nothing from ``agent``, lazily or not."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "sim"


def imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def upward_imports(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / package).rglob("*.py")
                  for m in imported_modules(p) if m.split(".")[0] in forbidden)


def test_training_imports_nothing_from_agent():
    """The listwise stage trains on the candidate sets and scores the recommender ranks: they live in
    ``sim.candidates`` and ``training.scoring``, not in ``agent``."""
    assert upward_imports("training", ("agent", "app")) == []


def test_sim_imports_nothing_from_agent_or_training():
    assert upward_imports("sim", ("agent", "training", "app")) == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from agent.recommender import Recommender\n")
    assert imported_modules(bad) == {"agent.recommender"}
