"""What every recommender answers, and how a target policy is asked.

``Recommendation`` is the one answer type: the trained recommender (``agent.recommender``), every
method of ``homepilot evaluate`` (``agent.evaluate``), the replay/live target policies
(``agent.replay_eval``) and the hidden truth (``agent.replay_truth``) all produce or read it. ``exposed`` is decided by the one gate, ``agent.confidence.gate``, by
whoever builds the recommendation (with its own adapted threshold); readers never re-gate.

``Policy`` is the target-policy protocol of ``homepilot replay``: one ``Recommendation`` per
feedback row (keys ``home_id``, ``time``, ``prompt``, ``devices``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sim.records import Action, serialize_target

if TYPE_CHECKING:
    from agent.confidence import AttributeProbs
    from agent.decoding import TokenStep

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Recommendation:
    """One decision: what would be recommended, how sure the model is, and whether it is shown."""

    actions: tuple[Action, ...]  # legal for the home; () when abstained or cut by the cascade
    description: str = ""
    # fused (and calibrated) confidence in [0, 1]; 0 when nothing was decoded; None for a method
    # without one (evaluation's feature baselines): never exposed
    confidence: float | None = None
    exposed: bool = False  # agent.confidence.gate(confidence, base threshold, relax) (and something to show)
    reason: str = ""
    threshold: float = 0.0  # the adapted gate threshold used
    relax: float = 1.0  # adapted threshold / base threshold (x0.9 for large pools, numeric values)
    latency_ms: float = 0.0  # time to answer, per context (evaluation)
    attribute_probs: tuple[AttributeProbs, ...] = ()  # P(device), P(field), P(value) per action
    first_token_prob: float = 0.0
    eq6: float = 0.0  # Eq. 6 averaged over actions, before fusion
    text: str = ""  # the completion as generated
    steps: tuple[TokenStep, ...] = ()  # per-token probabilities (raw and legal) and spans
    # candidates search: the best-scored action sets and their posteriors, best first (up to 5)
    alternatives: tuple[tuple[tuple[Action, ...], float], ...] = ()

    def target(self) -> str:
        """The env action: the action-first target, or "" for nothing."""
        return serialize_target(self.actions, self.description) if self.actions else ""


def gated(actions: Sequence[Action], description: str, confidence: float, threshold: float,
          reason: str) -> Recommendation:
    """A recommendation whose exposure is ``agent.confidence.gate(confidence, threshold)`` (for
    policies without adaptive thresholds: the baselines)."""
    from agent.confidence import gate

    actions = tuple(actions)
    return Recommendation(actions, description, float(confidence), bool(actions) and gate(confidence, threshold),
                          reason, threshold=threshold)


class Policy(Protocol):
    """A target policy: one ``Recommendation`` per feedback row, its exposure already gated."""

    name: str

    def recommend(self, rows: Sequence[Row]) -> list[Recommendation]: ...
