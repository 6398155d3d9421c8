"""Metrics and access logs: plain counters on the hot path, aggregated on scrape."""
