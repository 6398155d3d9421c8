"""Load benchmarks of Portway against nginx and HAProxy on one machine (see README.md)."""
