"""The portway command."""
