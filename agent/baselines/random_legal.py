"""Random-legal baseline: one uniformly random legal single action for the home.

The floor of the paper's Table 2. The action is drawn uniformly from the home's full legal
candidate set (``candidates.legal_actions``: devices x fields x value grids), so numeric fields
with long grids get most of the mass, as they would for a recommender that knows only what is
legal. All randomness comes from the seeded ``numpy.random.Generator`` the baseline owns.
"""

from __future__ import annotations

import numpy as np

from sim.candidates import Types, legal_actions
from sim.records import Action, Prompt


class RandomLegalBaseline:
    """Uniform over legal single actions.

    Arguments:
        seed: seed of the owned ``numpy.random.Generator``; ``reset(seed)`` reseeds it, so the
            same seed and the same sequence of contexts give the same predictions.
    """

    name = "random_legal"

    def __init__(self, seed: int = 0) -> None:
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def predict(self, prompt: Prompt, types: Types) -> tuple[Action, ...]:
        """One legal action, ``(action,)``; CatalogError for a device with an unknown type."""
        candidates = legal_actions(prompt, types)  # ValueError when there is no candidate device
        return (candidates[int(self.rng.integers(len(candidates)))],)

    def predict_batch(self, contexts: list[tuple[Prompt, Types]]) -> list[tuple[Action, ...]]:
        return [self.predict(p, t) for p, t in contexts]
