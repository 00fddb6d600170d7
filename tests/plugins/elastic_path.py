"""Pytest fixtures: the elastic_path simulator (filled in by its owner)."""
