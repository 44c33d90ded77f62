"""Suite-wide settings: Hypothesis explores randomly on a developer machine, and replays
a fixed, derandomized set of examples in CI, so a CI run is repeatable (`CI=true`)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
