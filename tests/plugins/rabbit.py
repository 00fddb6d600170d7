"""Pytest fixtures: rabbit (filled in by its owner)."""
