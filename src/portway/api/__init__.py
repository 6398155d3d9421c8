"""The REST API (v1) and the compatibility APIs."""
