"""Pytest fixtures: the zuora simulator (filled in by its owner)."""
