"""Shared test configuration: hypothesis profiles (CI is derandomized and bounded)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["ci_guard", "serf_helpers"]

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=200,
    deadline=2000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=2000, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
