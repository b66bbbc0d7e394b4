"""Fixtures of the simulation tests."""

from __future__ import annotations

import pytest

from gdask.simulate import make_response


@pytest.fixture(scope="session")
def responses():
    return {name: make_response(name) for name in ("hess-like", "magic-like", "cta-like")}
