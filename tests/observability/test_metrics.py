"""Prometheus rendering and merging of per-worker counters; batched access log."""

from __future__ import annotations

import asyncio
import io
import json

from portway.observability.access_log import AccessLog
from portway.observability.metrics import RequestMetrics, merge, render


def test_requests_are_counted_by_status_class_and_latency_bucketed() -> None:
    m = RequestMetrics()
    m.observe("alpha", "wiki.test/", 200, 0.003)
    m.observe("alpha", "wiki.test/", 204, 0.2)
    m.observe("alpha", "wiki.test/", 502, 20.0)
    text = render(m, {})
    assert 'portway_requests_total{project="alpha",proxy="wiki.test/",code="2xx"} 2' in text
    assert 'portway_requests_total{project="alpha",proxy="wiki.test/",code="5xx"} 1' in text
    m.observe("alpha", "other.test/", 200, 0.003)
    text = render(m, {})
    # histograms are per project: both proxies' requests land in one
    assert 'duration_seconds_bucket{project="alpha",le="0.005"} 2' in text
    assert 'duration_seconds_bucket{project="alpha",le="0.25"} 3' in text
    assert 'duration_seconds_bucket{project="alpha",le="+Inf"} 4' in text
    assert 'duration_seconds_count{project="alpha"} 4' in text


def test_worker_exports_merge_into_one_total() -> None:
    a, b = RequestMetrics(), RequestMetrics()
    a.observe("p", "x", 200, 0.01)
    b.observe("p", "x", 200, 0.01)
    b.observe("p", "x", 404, 0.01)
    total = merge([a.export(), b.export()])
    assert total.requests == {("p", "x", "2xx"): 2, ("p", "x", "4xx"): 1}
    assert sum(total.latency[("p", "")][:-1]) == 3


def test_gauges_and_label_escaping() -> None:
    text = render(RequestMetrics(), {"portway_up": ("Up.", [({"name": 'a"b'}, 1.0)])})
    assert "# TYPE portway_up gauge" in text
    assert 'portway_up{name="a\\"b"} 1' in text


def test_access_log_batches_lines_until_flushed() -> None:
    stream = io.StringIO()

    async def main() -> None:
        log = AccessLog(stream, flush_interval=0.05)
        log.log(method="GET", status=200)
        log.log(method="POST", status=502)
        assert stream.getvalue() == ""  # nothing written per request
        await asyncio.sleep(0.1)

    asyncio.run(main())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["method"], e["status"]) for e in lines] == [("GET", 200), ("POST", 502)]
    assert all("time" in e for e in lines)


def test_access_log_flushes_when_the_buffer_fills() -> None:
    stream = io.StringIO()

    async def main() -> None:
        log = AccessLog(stream, flush_interval=60, max_buffer=3)
        for i in range(3):
            log.log(n=i)
        assert len(stream.getvalue().splitlines()) == 3
        log.flush()

    asyncio.run(main())


def test_a_total_is_typed_as_a_counter() -> None:
    text = render(
        RequestMetrics(),
        {"portway_source_events_total": ("Events.", [({"source": "toolforge"}, 3.0)])},
    )
    assert "# TYPE portway_source_events_total counter" in text
    assert 'portway_source_events_total{source="toolforge"} 3' in text


def test_relayed_connections_and_bytes_merge_and_render_by_proxy() -> None:
    one, two = RequestMetrics(), RequestMetrics()
    one.relay("alpha", "db.example.org:8500/", 10, 20)
    two.relay("alpha", "db.example.org:8500/", 1, 2)
    total = merge([one.export(), two.export(), {"requests": {}, "latency": {}}])
    text = render(total, {})
    labels = '{project="alpha",proxy="db.example.org:8500/"}'
    assert f"portway_relayed_connections_total{labels} 2" in text
    assert f"portway_relayed_bytes_in_total{labels} 11" in text
    assert f"portway_relayed_bytes_out_total{labels} 22" in text
    assert "# TYPE portway_relayed_bytes_in_total counter" in text
