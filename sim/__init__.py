"""HomePilot simulator package. Importing it registers the gymnasium envs (``homepilot/HomeReplay-v0``,
``homepilot/HomeLive-v0``) with string entry points, so it stays torch-free and light."""

from sim import envs as _envs  # noqa: F401  (registration on import)
