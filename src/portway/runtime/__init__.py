"""Process wiring for ``portway serve``: the control process and data-plane workers."""
