"""The harness itself: a port taken between picking it and ``serve`` binding it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.integration.harness import Portway


def test_a_port_taken_before_serve_binds_it_is_tried_again_on_fresh_ones(
    tmp_path: Path,
) -> None:
    pw = Portway(tmp_path / "data")
    taken = pw.http_port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        pw.start()
        try:
            assert pw.http_port != taken
            assert httpx.get(f"{pw.api_url}/healthz").status_code == 200
        finally:
            pw.stop()
