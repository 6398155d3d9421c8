"""Compatibility surfaces of the systems Portway replaces (design/compat.md), pure:
wire rules and conversions between their shapes and Portway's domain objects."""
