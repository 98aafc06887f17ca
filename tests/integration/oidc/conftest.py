"""Fixtures of the OpenID Connect tests."""

from __future__ import annotations

import pytest

from tests.conftest import ServerFactory
from tests.support.server import LiveServer


@pytest.fixture
def dev_server(make_server: ServerFactory) -> LiveServer:
    """A server that fetches client documents from loopback, as in development."""
    return make_server(oidc_client_fetch_allow_loopback=True)
