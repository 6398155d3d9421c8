"""The built-in data plane: a thin asyncio shell (uvloop + httptools) over protocol/ and router/.

Imports point one way, from the top of this list down (tests/dataplane/test_imports.py):

- ``server``: ``DataPlane``: listeners, the applied snapshot, the sweep timer, the drain.
- ``client``: ``ClientConnection``, the one ``asyncio.Protocol`` per client connection:
  transport, request parser and output buffer; it carries out the decisions below.
- ``conn_state``: ``ConnState``, a client connection's phases, deadlines and close rules
  (sans-IO: values in, decisions out).
- ``forwarding``: route, backend choice and retry decisions (pure).
- ``answers``: the proxy's own answers as bytes (error pages, the HTTPS redirect).
- ``switching``: whether a backend's 101 completes the client's WebSocket handshake.
- ``tunnel``: the raw byte splice after a WebSocket 101.
- ``upstream``: ``UpstreamConnection``, one Protocol per backend connection; it talks to
  the client through ``ResponseSink``; ``connect`` dials a backend.
- ``resolve``: a backend's addresses, each checked against the operator's backend policy.
- ``shared``: the plug points between the two: ``Shared`` (the data plane as a connection
  sees it) and ``Tracked`` (a connection as the sweep sees it).
- ``recording``: the end of an exchange: in-flight counts, metrics, access log.
- ``exchange``: ``Exchange``, one request/response pair.
- ``picking``: backend choice with session persistence and hash keys; the cookie to set.
- ``plans``: per-proxy balancer state, timeouts and metric keys; the health view.
- ``pool``: idle upstream connection bookkeeping (pure).
- ``tls``: SNI-chosen certificates for the HTTPS listener.
- ``settings``: ``DataPlaneSettings``.
"""

from portway.dataplane.server import DataPlane
from portway.dataplane.settings import DataPlaneSettings

__all__ = ["DataPlane", "DataPlaneSettings"]
