"""Names shared across the Dagster layer: asset keys, groups, checks, tags."""

import dagster as dg

TEACHER_PARTITIONS_NAME = "teacher"

# asset groups, one per pipeline stage
INGEST_GROUP = "ingest"

# asset keys
RAW_TRACES = dg.AssetKey("raw_traces")
RAW_TRACE_REJECTS = dg.AssetKey("raw_trace_rejects")

# asset check names
CHECK_ACCOUNTING = "records_accounted_for"
CHECK_UNIQUE_IDS = "unique_ids"
CHECK_NON_EMPTY_TEXT = "non_empty_text"
CHECK_TOKEN_BOUNDS = "token_counts_in_bounds"

# jobs, sensors, schedules
REPROCESS_JOB = "reprocess_teacher"
LANDING_SENSOR = "landing_zone_sensor"
REPROCESS_SCHEDULE = "reprocess_all_teachers"
