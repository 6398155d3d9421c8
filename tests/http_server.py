"""The threaded HTTP server every test backend and origin is made of."""

from __future__ import annotations

import http.server


class TestHTTPServer(http.server.ThreadingHTTPServer):
    # Class attributes: listen() runs in the constructor. socketserver's default backlog
    # of 5 drops the SYNs of a burst of new connections (a plane opening many upstream
    # connections at once), and each dropped SYN waits out a 1 s retransmission: a
    # latency the test then blames on Portway.
    request_queue_size = 256
    daemon_threads = True
    __test__ = False  # not a pytest test class
