"""Adapters: <port>/<technology>.py, chosen by URL scheme in bootstrap.py."""
