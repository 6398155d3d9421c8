"""Active health checks and passive outlier detection."""
