"""The REST API (v1): ``create_app(service)`` returns the Starlette application."""

from portway.api.app import create_app

__all__ = ["create_app"]
