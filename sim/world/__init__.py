"""The simulator: one SimPy home per (seed, index), its people, habits, physics and hidden truth.

``simulate_home(SimConfig(...), index) -> HomeLog`` runs one home (``sim.world.world``); the
dataset manifests name it as ``"sim.world:simulate_home"``. Submodules import each other by
their full path (``from sim.world.behaviour import ...``), never through this package.
"""

from sim.world.world import SimConfig, World, simulate_home

__all__ = ["SimConfig", "World", "simulate_home"]
