"""dlcot-dagster: DLCoT distillation data pipeline on Dagster.

Domain logic lives in :mod:`dlcot_dagster.domain` (no Dagster imports); the
Dagster layer lives in :mod:`dlcot_dagster.defs` and is assembled by
:mod:`dlcot_dagster.definitions`.
"""

__version__ = "0.1.0"
