"""The listener's rights over their data: a copy of everything (export) and erasure (deletion)."""
