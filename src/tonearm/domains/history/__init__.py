"""The history domain."""
