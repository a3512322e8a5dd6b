"""The usual-operation rule: the prompt's most likely usual operation not already in place.

It reads the prompt alone, like the LM and the GBDT reranker: ``Prompt.usual`` (the home's
operations around this time of day, most likely first: ``sim.prompts.usual_operations``) and the
devices' known state (``Prompt.known_state``). The answer is the first usual operation that is not
a no-op under that state (``sim.candidates.is_noop``, the test the LM's candidate
scoring drops no-ops with); when every one is, the first; with no usual operation, ``()``
(abstain). No confidence: it is never exposed.

It is time-of-day counting made state-aware, and the floor a model that reads its prompt should
clear: on the quickstart preset (generator 0.5.1, each seed's 600 evaluated test contexts,
``docs/reproduce``) it scores EM-Acc 0.293 / 0.330 / 0.300 on seeds 0 / 1 / 2, where the time-of-day
Frequency baseline (which recommends settings a device already has) scores 0.233 / 0.258 / 0.222.
"""

from __future__ import annotations

from collections.abc import Mapping

from sim.candidates import is_noop
from sim.records import Action, Prompt


def usual_rule(prompt: Prompt, current: Mapping[tuple[str, str], Mapping[str, str]] | None = None,
               types: Mapping[tuple[str, str], str] | None = None) -> tuple[Action, ...]:
    """The first of ``prompt.usual`` that the known state does not already hold (see the module).

    ``current``: the devices' true state where the caller knows it (the live app), judged with the
    catalogue's effects (``is_noop(..., types)``) instead of the prompt's logged state; then nothing
    in place is ever answered: ``()`` when every usual operation already holds."""
    if not prompt.usual:
        return ()
    if current is not None:
        return next((tuple(u) for u in prompt.usual if not is_noop(u, current, types)), ())
    state = prompt.known_state()
    return next((tuple(u) for u in prompt.usual if not is_noop(u, state)), tuple(prompt.usual[0]))
