"""Portway: one public address, one wildcard certificate and one proxy tier for a shared cloud."""

__version__ = "0.1.0"
