"""Hypothesis settings shared by the fuzzing tests: bounded, repeatable, no example database."""

from __future__ import annotations

import hypothesis

BOUNDED = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
