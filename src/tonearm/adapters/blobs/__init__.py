"""Blob store adapters."""
