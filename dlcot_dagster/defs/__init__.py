"""The Dagster layer: thin wiring over :mod:`dlcot_dagster.domain`, one sub-package per stage."""
