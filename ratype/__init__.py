"""ratype package."""
