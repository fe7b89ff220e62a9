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
CHECK_REFERENCE_SOURCES = "reference_sources_accounted_for"
CHECK_SELF_REFERENCE_SHARE = "self_reference_share"

# jobs, sensors, schedules
REPROCESS_JOB = "reprocess_teacher"
LANDING_SENSOR = "landing_zone_sensor"
REPROCESS_SCHEDULE = "reprocess_all_teachers"

# decontamination, before the DLCoT stages
DECONTAM_GROUP = "decontam"
DECONTAM_VERDICTS = dg.AssetKey("decontam_verdicts")
CROSS_TEACHER_PROBLEMS = dg.AssetKey("cross_teacher_problems")
CHECK_NO_BENCHMARK_OVERLAP = "no_benchmark_overlap"

# stage 2: DLCoT
DLCOT_GROUP = "dlcot"
SEGMENTED_TRACES = dg.AssetKey("segmented_traces")
PRUNED_SOLUTIONS = dg.AssetKey("pruned_solutions")
CORRECTED_TRACES = dg.AssetKey("corrected_traces")
DROPPED_TRACES = dg.AssetKey("dropped_traces")

CHECK_SEGMENT_COVERAGE = "segments_cover_thinking"
CHECK_ANSWERS_VERIFIED = "final_answers_verified"
CHECK_TOKENS_NOT_INCREASED = "tokens_not_increased"
CHECK_MAX_SEQ_LEN = "within_max_seq_len"
CHECK_DLCOT_ACCOUNTING = "raw_rows_accounted_for"
CHECK_TOKEN_REDUCTION = "median_token_reduction"

# stage 3: students (SFT + benchmarks); on demand, never part of reprocess_teacher
STUDENTS_GROUP = "students"
STUDENT_CHECKPOINTS = dg.AssetKey("student_checkpoints")
BENCHMARK_SCORES = dg.AssetKey("benchmark_scores")

# stage 2b: SFT datasets out of corrected_traces (per teacher partition, in reprocess_teacher)
EXPORT_GROUP = "export"
SFT_EXPORTS = dg.AssetKey("sft_exports")
CHECK_EXPORT_COMPLETE = "exports_match_corrected_traces"
