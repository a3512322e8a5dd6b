"""``homepilot/HomeLive-v0``: a live SimPy home (``sim.world.live.LiveHome``) answering the agent.

Each step the home runs to its next app-open decision point; the agent's recommendation is
judged by the acceptance model (``LiveHome.judge``), the simulated user's answer is drawn with
the env's ``np_random``, and an accepted operation is carried out (``LiveHome.apply``), which
changes the home (device states, room physics, pending intents) for every later step.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import gymnasium as gym

from sim.dataset.rows import DecisionPrompts
from sim.envs.common import (
    PROMPT_MIN,
    TEXT_MAX,
    action_space,
    observation_space,
    parse_recommendation,
    sanitize,
    split_prompt,
    time_features,
)
from sim.prompts import HISTORY_K
from sim.records import serialize_prompt


class HomeLiveEnv(gym.Env):
    """A simulated home that runs between the agent's recommendations.

    ## Description
    One home per episode (``sim.world.live.LiveHome``, seeded by ``config.seed`` and the home index).
    Each step runs the SimPy home to the next app-open decision point (a resident opens the
    app). The agent recommends an operation or abstains; the simulated user accepts with the
    acceptance model's probability (``sim.world.acceptance``), drawn with ``np_random``; an accepted
    operation is carried out as an app operation and changes the home.

    ## Observation
    The same ``Dict`` as ``HomeReplay-v0``: ``prompt`` (``Text``, built with ``sim.prompts``
    from the home's logged operations, exactly as the dataset's prompts), ``time`` (``Box``
    int64 (2,): minute of day, weekday), ``environment`` (``Text``, the prompt's readings: the rooms of
    ``sim.prompts.context_rooms`` and outdoors, known before the decision) and ``candidates`` (``Text``, the home's devices ``[room][device]``, each followed by its last known state ``[field][value]...``).

    ## Action
    ``Text``: a recommendation in the canonical grammar (bare actions or ``<act> ... <desc>
    ...``); ``""`` abstains. Malformed or illegal recommendations are invalid, count as
    rejected and leave the home unchanged; the env never raises on an action.

    ## Reward
    +1 accepted, ``-penalty`` rejected (invalid included), 0 abstained.

    ## Episode end
    Terminated when the simulated days are over (no further decision point); never truncated.
    ``info``: ``actions``, ``valid``, ``abstained``, ``accepted``, ``p_accept`` (the model's
    probability), ``factors`` (its logit terms), ``judged_by`` (``user`` | ``abstain`` |
    ``invalid``), ``reason``, ``home_id``, ``time`` (ISO), ``user`` (who opened the app).

    ## Arguments
    ``config``: a ``sim.world.SimConfig`` or a dict of its fields (default: 2 days, seed 0);
    ``homes``: the home index is drawn from ``0..homes-1`` at each reset (default 8);
    ``index``: always this home; ``penalty``: cost of a rejection (default 1.0, >= 0);
    ``history_k``: operations in the prompt's history window (default ``sim.prompts.HISTORY_K``).
    ``reset(options={"index": i, "start": datetime})`` picks the home and runs it silently up
    to ``start`` (e.g. a dataset's test period) before the first decision point.

    ## Version history
    - v0: first version (``candidates`` carries device states since HomePilot's generator 0.4.0).
    """

    metadata = {"render_modes": []}

    def __init__(self, config: Any = None, homes: int = 8, index: int | None = None, penalty: float = 1.0,
                 history_k: int = HISTORY_K) -> None:
        from sim.world import SimConfig

        if config is None:
            config = SimConfig(days=2)
        elif isinstance(config, dict):
            config = SimConfig(**config)
        elif not isinstance(config, SimConfig):
            raise ValueError(f"config must be a sim.world.SimConfig or a dict of its fields, got {type(config).__name__}")
        if homes < 1:
            raise ValueError(f"homes must be >= 1, got {homes}")
        if index is not None and index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        if penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {penalty}")
        if history_k < 0:
            raise ValueError(f"history_k must be >= 0, got {history_k}")
        self.config, self.homes, self.index = config, homes, index
        self.penalty, self.history_k = float(penalty), history_k
        self.observation_space = observation_space(PROMPT_MIN)
        self.action_space = action_space()
        self.home: Any = None
        self._done = True
        self._obs_cache: dict[str, Any] | None = None

    # ------------------------------------------------------------ observation

    def _observe(self) -> dict[str, Any]:
        h = self.home
        now: datetime = h.now
        # exactly the dataset's decision-time prompt (sim.dataset.rows.DecisionPrompts): logged
        # history strictly before now, the readings of the same rooms, known before now
        prompt = serialize_prompt(DecisionPrompts(h.log, self.history_k).prompt(now))
        envtext, cand = split_prompt(prompt)
        return {"prompt": sanitize(prompt, PROMPT_MIN), "time": time_features(now),
                "environment": sanitize(envtext, TEXT_MAX), "candidates": sanitize(cand, TEXT_MAX)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        from sim.world.live import LiveHome

        super().reset(seed=seed)
        options = options or {}
        index = options.get("index", self.index)
        if index is None:
            index = int(self.np_random.integers(self.homes))
        self.home = LiveHome(self.config, int(index))
        if options.get("start") is not None:
            self.home.advance(options["start"])
        self._types = self.home.home.types()
        t = self.home.step_to_next_decision()
        self._done = t is None
        obs = self._observe()
        return obs, {"home_id": self.home.home.home_id, "index": int(index), "no_decision": self._done}

    # ------------------------------------------------------------ step

    def step(self, action: Any):
        if self.home is None:
            raise RuntimeError("call reset() before step()")
        h = self.home
        parsed = parse_recommendation(action, self._types)
        user = h.decision_user
        info: dict[str, Any] = {"actions": parsed.actions, "valid": parsed.valid, "abstained": parsed.abstained,
                                "accepted": False, "p_accept": 0.0, "factors": {}, "reason": parsed.reason,
                                "home_id": h.home.home_id, "time": h.now.isoformat(), "user": user or ""}
        if self._done:  # no decision point at all in this episode: nothing to judge
            info["judged_by"] = "abstain" if parsed.abstained else "invalid"
            return self._observe(), 0.0, True, False, info
        if parsed.abstained:
            reward, info["judged_by"] = 0.0, "abstain"
        elif not parsed.valid:
            reward, info["judged_by"] = -self.penalty, "invalid"
        else:
            j = h.judge(parsed.actions, parsed.description)
            accepted = bool(self.np_random.random() < j.p)
            info.update(p_accept=float(j.p), factors=dict(j.factors), accepted=accepted, judged_by="user")
            if accepted:
                h.apply(parsed.actions, parsed.description, user=user)
            reward = 1.0 if accepted else -self.penalty
        t = h.step_to_next_decision()
        self._done = t is None
        return self._observe(), reward, self._done, False, info
