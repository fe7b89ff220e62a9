"""Students: SFT on distillation data (``sft``), benchmark files (``benchmarks``), evaluation (``evaluate``).

Plain Python (no Dagster); the assets in ``dlcot_dagster.defs.students`` are thin wrappers.
"""
