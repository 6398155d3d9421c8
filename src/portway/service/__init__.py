"""The only path for configuration changes: validation, ownership, quotas, provenance."""
