"""The one ``Definitions`` object that ``dagster dev``, ``dagster definitions validate`` and
``workspace.yaml`` load."""

import dagster as dg

from .defs.benchmarks import BenchmarksResource
from .defs.decontam.assets import cross_teacher_problems, decontam_verdicts
from .defs.decontam.resources import DecontamResource
from .defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from .defs.deployment import executor_from_env, storage_resources
from .defs.dlcot.resources import DLCoTEngineResource
from .defs.export.assets import sft_exports
from .defs.ingest.assets import raw_traces
from .defs.landing.jobs import reprocess_job
from .defs.landing.schedules import reprocess_schedule
from .defs.landing.sensors import landing_zone_sensor
from .defs.llm.assets import teacher_generations
from .defs.llm.resources import LLMResource
from .defs.resources import TokenizerResource
from .defs.students.assets import benchmark_scores, student_checkpoints


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        # teacher_generations (on demand, GPU) writes a landing folder; it is not downstream of raw_traces
        # student_checkpoints / benchmark_scores (on demand, GPU) are not in reprocess_teacher (defs/landing/jobs.py)
        # cross_teacher_problems (on demand, every teacher partition) is not in reprocess_teacher either
        assets=[
            raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces, sft_exports,
            teacher_generations, student_checkpoints, benchmark_scores, cross_teacher_problems,
        ],
        jobs=[reprocess_job],
        sensors=[landing_zone_sensor],
        schedules=[reprocess_schedule],
        resources={
            # landing_zone, parquet_io_manager, blob_store (+ s3): local, or S3 by DLCOT_*_URL (defs/deployment.py)
            **storage_resources(),
            "tokenizer": TokenizerResource(),
            "dlcot_engine": DLCoTEngineResource(),
            "llm": LLMResource(),
            # the one list of evaluation benchmarks: benchmark_scores evaluates on it, decontamination guards against it
            "benchmarks": BenchmarksResource(),
            "decontam": DecontamResource(),
        },
        executor=executor_from_env(),  # DLCOT_EXECUTOR=k8s: one pod per step
    )


defs = build_definitions()
