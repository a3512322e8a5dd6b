"""Gymnasium environments of HomePilot, registered under the ``homepilot/`` namespace on import.

- ``homepilot/HomeReplay-v0`` (``sim.envs.replay.HomeReplayEnv``): replays the logged decision
  points of a dataset split; acceptance judged by logged feedback or by the label.
- ``homepilot/HomeLive-v0`` (``sim.envs.live.HomeLiveEnv``): a live SimPy home; the simulated
  user answers through the acceptance model and accepted operations change the home.

Only the registration lives here (string entry points), so ``import sim`` stays light: the
env modules are imported by ``gymnasium.make``.
"""

from __future__ import annotations

import gymnasium

REPLAY_ID = "homepilot/HomeReplay-v0"
LIVE_ID = "homepilot/HomeLive-v0"


def register_envs() -> None:
    """Register both envs once (importing ``sim`` calls this; a second call is a no-op)."""
    if REPLAY_ID not in gymnasium.registry:
        gymnasium.register(id=REPLAY_ID, entry_point="sim.envs.replay:HomeReplayEnv")
    if LIVE_ID not in gymnasium.registry:
        gymnasium.register(id=LIVE_ID, entry_point="sim.envs.live:HomeLiveEnv")


register_envs()
