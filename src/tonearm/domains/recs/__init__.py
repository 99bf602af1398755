"""Recommendations: signals -> models (collaborative, content, popularity) -> surfaces."""
