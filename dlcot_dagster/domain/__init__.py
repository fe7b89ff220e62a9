"""Plain-Python domain logic. Nothing in this package may import dagster."""
