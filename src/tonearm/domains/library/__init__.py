"""The library domain."""
