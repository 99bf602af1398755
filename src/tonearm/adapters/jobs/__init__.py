"""Job queue adapters."""
