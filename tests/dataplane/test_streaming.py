"""50 MiB each way through the proxy with bounded memory.

tracemalloc counts every Python allocation in the process (proxy, origin and client
threads). If the proxy buffered a body whole, the peak would pass 50 MiB; streaming with
backpressure keeps it to a few read buffers.
"""

from __future__ import annotations

import socket
import tracemalloc

from tests.dataplane.conftest import CHUNK, H_APP, Origin, ProxyRunner

SIZE = 50 * 1024 * 1024
LIMIT = 8 * 1024 * 1024


def test_50mib_download_streams_with_bounded_memory(proxy: ProxyRunner) -> None:
    tracemalloc.start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
            sock.sendall(b"GET /big HTTP/1.1\r\n" + H_APP + b"Connection: close\r\n\r\n")
            buf = bytearray(1 << 20)
            total = 0
            while True:
                n = sock.recv_into(buf)
                if not n:
                    break
                total += n
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > SIZE
    assert peak < LIMIT, f"peak {peak / 1e6:.1f} MB"


def test_50mib_upload_streams_with_bounded_memory(proxy: ProxyRunner, origin: Origin) -> None:
    tracemalloc.start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
            sock.sendall(
                b"POST /upload HTTP/1.1\r\n" + H_APP + b"Content-Length: %d\r\n\r\n" % SIZE
            )
            for _ in range(SIZE // len(CHUNK)):
                sock.sendall(CHUNK)
            answer = b""
            while b"one /upload" not in answer:
                answer += sock.recv(4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.startswith(b"HTTP/1.1 200")
    assert origin.seen[-1].body_len == SIZE
    assert peak < LIMIT, f"peak {peak / 1e6:.1f} MB"


def test_chunked_50mib_upload_is_streamed(proxy: ProxyRunner, origin: Origin) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=20) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\n" + H_APP + b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
        for _ in range(SIZE // len(CHUNK)):
            sock.sendall(piece)
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while b"one /upload" not in answer:
            answer += sock.recv(4096)
    assert origin.seen[-1].body_len == SIZE
