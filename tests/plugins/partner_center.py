"""Pytest fixtures: the partner_center simulator (filled in by its owner)."""
