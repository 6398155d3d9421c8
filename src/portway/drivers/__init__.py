"""Drivers: render Portway's snapshots for external proxies (nginx, HAProxy) and apply
them, keeping the last good configuration when a new one is refused."""
