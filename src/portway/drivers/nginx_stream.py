"""nginx's ``stream {}`` for the ``tcp`` and ``tls-passthrough`` ports (``listen_port``,
docs/listeners.md), as text (pure).

A ``tcp`` port is a ``server`` relaying to its one proxy's upstream; a
``tls-passthrough`` port reads the ClientHello (``ssl_preread``) without terminating TLS
and picks the upstream by ``$ssl_preread_server_name`` through a ``map``: the exact
names, then one-level wildcards (a regex, as ``server_name`` in nginx_config: nginx's
own ``*.parent`` takes any depth). A hello without a known name, or bytes that are not
one, go to an upstream with no live server: closed, nothing relayed. Only the ports
the node's ``--listen-ports`` allows are rendered (``binds``); the stream module is
loaded by the main file (nginx_http.main) when this text is not empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from portway.drivers.addresses import listen_addresses
from portway.drivers.nginx_options import NginxOptions
from portway.drivers.nginx_syntax import comment, quote, upstream_name
from portway.model import Proxy

CLOSED = "portway_stream_closed"  # what an unknown server name reaches: nothing
NOWHERE = "127.0.0.1:9"  # the server of an upstream that must reach nothing (down)


def binds(port: int, options: NginxOptions) -> tuple[tuple[str, int], ...]:
    """Where ``port`` is opened: none when it is not allowed or is one of Portway's own."""
    return tuple((address, port) for address in options.listen_policy.opens(port))


def block(
    ports: Mapping[int, Sequence[Proxy]],
    claimed: Mapping[int, str],
    options: NginxOptions,
    members: Mapping[str, str],
    server_name: Mapping[str, str],
) -> str:
    """The ``stream {}`` block for ``ports`` (port → its proxies, all rendered); empty
    when there are none. ``members``: each proxy's balancing method and ``server``
    lines (nginx_config's, as in http{}); ``server_name``: a wildcard's regex."""
    if not ports:
        return ""
    lines = ["stream {\n", f"    upstream {CLOSED} {{\n        server {NOWHERE} down;\n    }}\n"]
    for port, group in sorted(ports.items()):
        for proxy in group:
            lines.append(f"    upstream {upstream_name(proxy.id)} {{\n{members[proxy.id]}    }}\n")
        lines.append(_server(port, claimed[port], group, options, server_name))
    lines.append("}\n")
    return "".join(lines)


def _server(
    port: int,
    protocol: str,
    group: Sequence[Proxy],
    options: NginxOptions,
    server_name: Mapping[str, str],
) -> str:
    first = group[0]  # a tcp port has one proxy (the service's rule)
    lines = []
    target = upstream_name(first.id)
    if protocol == "tls-passthrough":
        target = f"$portway_sni_{port}"
        lines.append(f"    map $ssl_preread_server_name {target} {{\n        default {CLOSED};\n")
        for proxy in group:
            name = server_name.get(proxy.hostname, proxy.hostname)
            if name.startswith("~"):  # the client's spelling: exact keys ignore case, so must this
                name = "~*" + name[1:]
            lines.append(f"        {quote(name)} {upstream_name(proxy.id)};\n")
        lines.append("    }\n")
    lines += ["    server {\n", "        " + comment(f"port {port} ({protocol})")]
    lines += [f"        listen {a};\n" for a in listen_addresses(binds(port, options), "nginx")]
    if protocol == "tls-passthrough":
        lines.append("        ssl_preread on;\n")
        lines.append(f"        preread_timeout {_ms(options.client_header_timeout)};\n")
    timeouts = first.timeouts
    lines += [
        f"        proxy_pass {target};\n",
        f"        proxy_connect_timeout {_ms(timeouts.connect)};\n",
        f"        proxy_timeout {_ms(max(p.timeouts.idle for p in group))};\n",
        "        proxy_next_upstream on;\n",
        "        proxy_next_upstream_tries 2;\n",
    ]
    if protocol == "tcp" and first.stream.max_connections is not None:
        lines.append(f"        limit_conn portway_port_{port} {first.stream.max_connections};\n")
    lines.append("    }\n")
    if protocol == "tcp" and first.stream.max_connections is not None:
        lines.append(f"    limit_conn_zone $server_port zone=portway_port_{port}:64k;\n")
    return "".join(lines)


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"
