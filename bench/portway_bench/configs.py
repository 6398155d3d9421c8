"""Config templates for the origin, nginx and HAProxy, and the self-signed certificate.

Every template listens on 127.0.0.1 only. The proxies are configured alike where the
products allow it: HTTP/1.1 keep-alive to the origin (nginx ``keepalive`` upstream,
HAProxy ``http-reuse always``), X-Forwarded-For/-Proto added, access logs off, and no
per-connection request limit towards clients.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path
from string import Template

SMALL_BODY = "hello from the portway bench origin\n"
LARGE_SIZE = 64 * 1024
HOST = "bench.test"

ORIGIN = Template("""\
worker_processes 1;
pid $dir/origin.pid;
error_log $dir/origin.error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16000; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location = / { default_type text/plain; return 200 "$body"; }
        location = /64k { alias $dir/www/64k.bin; default_type application/octet-stream; }
    }
}
""")

NGINX = Template("""\
worker_processes $workers;
pid $dir/$name.pid;
error_log $dir/$name.error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16000; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server_names_hash_max_size 262144;
    server_names_hash_bucket_size 128;
    upstream origin {
        server 127.0.0.1:$origin;
        keepalive 512;
        keepalive_requests 10000000;
    }
$servers
}
""")

NGINX_SERVER = Template("""\
    server {
        listen 127.0.0.1:$http backlog=4096;
        server_name $hosts;
$tls
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $$host;
            proxy_set_header X-Forwarded-For $$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $$scheme;
            proxy_buffering on;
        }
    }
""")

HAPROXY = Template("""\
global
    nbthread $threads
    maxconn $maxconn
    log stderr format raw local0 err
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:$http
    bind 127.0.0.1:$https ssl crt $dir/bundle.pem
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
$routing
backend origin
    server origin 127.0.0.1:$origin maxconn 2000
""")


def write_origin(directory: Path, port: int) -> Path:
    www = directory / "www"
    www.mkdir(exist_ok=True)
    (www / "64k.bin").write_bytes(bytes(range(256)) * (LARGE_SIZE // 256))
    conf = directory / "origin.conf"
    body = SMALL_BODY.replace("\n", "\\n")
    conf.write_text(ORIGIN.substitute(dir=directory, port=port, body=body))
    return conf


def write_nginx(
    directory: Path, name: str, workers: str, ports: dict[str, int], hosts: list[str]
) -> Path:
    """One server block per host: how a per-proxy nginx config (our driver's shape) scales."""
    # Only the first block carries the TLS listener and certificate: nginx builds one
    # SSL_CTX per server block that has a certificate (~90 KiB each), and the route-scale
    # scenario is plain HTTP. Listen options such as backlog may appear only once.
    tls = (
        f"        listen 127.0.0.1:{ports['https']} ssl backlog=4096;\n"
        f"        ssl_certificate {directory}/cert.pem;\n"
        f"        ssl_certificate_key {directory}/key.pem;\n"
    )
    blocks = [
        NGINX_SERVER.substitute(http=ports["http"], hosts=host, tls=tls if i == 0 else "")
        for i, host in enumerate(hosts)
    ]
    blocks[1:] = [b.replace(" backlog=4096", "") for b in blocks[1:]]
    conf = directory / f"{name}.conf"
    conf.write_text(
        NGINX.substitute(
            dir=directory,
            name=name,
            workers=workers,
            origin=ports["origin"],
            servers="".join(blocks),
        )
    )
    return conf


def write_haproxy(
    directory: Path, name: str, threads: int, ports: dict[str, int], hosts: list[str]
) -> Path:
    """Host routing through a map file (HAProxy's usual way to hold many hostnames)."""
    if len(hosts) > 1:
        hosts_map = directory / f"{name}.hosts.map"
        hosts_map.write_text("".join(f"{h} origin\n" for h in hosts))
        routing = (
            f"    use_backend %[req.hdr(host),lower,word(1,:),map({hosts_map})]\n"
            "    default_backend origin\n"
        )
    else:
        routing = "    default_backend origin\n"
    conf = directory / f"{name}.cfg"
    conf.write_text(
        HAPROXY.substitute(
            dir=directory,
            threads=threads,
            maxconn=haproxy_maxconn(),
            http=ports["http"],
            https=ports["https"],
            origin=ports["origin"],
            routing=routing,
        )
    )
    return conf


def haproxy_maxconn() -> int:
    """HAProxy refuses to start when 2 x maxconn fds exceed the hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 30000 if hard == resource.RLIM_INFINITY else max(1000, min(30000, (hard - 200) // 2))


def write_certificate(directory: Path) -> None:
    """A self-signed ECDSA P-256 certificate for bench.test (and *.bench.test)."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={HOST}",
            "-addext",
            f"subjectAltName=DNS:{HOST},DNS:*.{HOST}",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    bundle = (directory / "cert.pem").read_bytes() + (directory / "key.pem").read_bytes()
    (directory / "bundle.pem").write_bytes(bundle)
