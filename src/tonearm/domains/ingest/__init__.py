"""The ingest domain."""
