"""Publishing: generated datasets (``build``), their rows, negatives, schema, shards, the strict
reader (``files``), the card, the validator and the importers.

``main(DatasetConfig(...))`` generates a dataset (``sim.dataset.build``). The function ``build``
is not re-exported here: ``sim.dataset.build`` is its module (``from sim.dataset.build import build``).
"""

from sim.dataset.build import GENERATOR_VERSION, PRESETS, DatasetConfig, main, sim_config

__all__ = ["GENERATOR_VERSION", "PRESETS", "DatasetConfig", "main", "sim_config"]
