import dagster as dg

from ..constants import CROSS_TEACHER_PROBLEMS, RAW_TRACE_REJECTS, RAW_TRACES, REPROCESS_JOB, STUDENTS_GROUP

# Downstream stages follow a changed partition through this job: it selects
# raw_traces and everything downstream of it, so an asset added by a later
# stage is reprocessed by the run the sensor (or the schedule) requests. The students group (SFT, benchmarks:
# GPU hours, teacher x variant partitions) is left out: those assets are materialized on demand, as is the
# unpartitioned cross_teacher_problems report (it reads every teacher partition).
reprocess_job = dg.define_asset_job(
    REPROCESS_JOB,
    selection=dg.AssetSelection.assets(RAW_TRACES, RAW_TRACE_REJECTS).downstream()
    - dg.AssetSelection.groups(STUDENTS_GROUP)
    - dg.AssetSelection.assets(CROSS_TEACHER_PROBLEMS),
    description="Re-ingest one teacher partition and rebuild everything downstream of it.",
)
