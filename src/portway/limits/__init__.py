"""Per-client limits of the built-in data plane, pure: token buckets keyed by client
address (``bucket``) and banned address ranges (``ranges``). No I/O, no clock of their
own: the caller passes the time."""
