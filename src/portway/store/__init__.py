"""Persistence and the change feed: one SQLAlchemy Core schema on SQLite or PostgreSQL."""
