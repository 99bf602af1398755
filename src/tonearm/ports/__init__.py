"""Narrow ports. Each is a Protocol whose docstrings say what an adapter MUST and MAY do."""
