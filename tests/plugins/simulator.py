"""Pytest fixtures: simulator (filled in by its owner)."""
