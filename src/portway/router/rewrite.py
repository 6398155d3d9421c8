"""A proxy's path rewrite (``Rewrite.backend_prefix``), decided once per proxy so that a
request pays one slice and one concatenation.

The router matched the request's path against the proxy's prefix on a segment boundary
(``/health`` covers ``/health`` and ``/health/x``, never ``/healthz``), so the target
starts with the prefix; what follows it (``/x``, ``?q``, or nothing) is kept and the
prefix is replaced: ``/health/x?q`` → ``/configuration/health/x?q``, ``/health`` →
``/configuration/health``. A prefix ``/`` keeps the whole target (``/x`` → ``/app/x``),
and a backend prefix ``/`` drops the frontend one (``/health/x`` → ``/x``, ``/health`` →
``/``). A target that is not a path (``OPTIONS *``) goes unchanged.
"""

from __future__ import annotations

from portway.model import Proxy


class PathRewrite:
    __slots__ = ("_cut", "_full", "_joined")

    def __init__(self, frontend: str, backend: str) -> None:
        self._cut = 0 if frontend == "/" else len(frontend)
        self._full = backend.encode("ascii")  # validated: RFC 3986 path characters only
        self._joined = b"" if backend == "/" else self._full  # before a rest that has "/"

    def target(self, url: bytes) -> bytes:
        """The request target to send upstream for the client's ``url``."""
        rest = url[self._cut :]
        if rest[:1] == b"/":
            return self._joined + rest
        if self._cut == 0:
            return url  # "*": not a path, nothing to rewrite
        return self._full + rest  # the prefix itself, perhaps with a query


def path_rewrite(proxy: Proxy) -> PathRewrite | None:
    """The rewrite of ``proxy``, or None when its targets go as the client sent them."""
    backend = proxy.rewrite.backend_prefix
    if backend is None or backend == proxy.path_prefix:
        return None
    return PathRewrite(proxy.path_prefix, backend)
