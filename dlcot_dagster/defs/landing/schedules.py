"""Periodic re-processing of every teacher partition (off by default)."""


import dagster as dg

from ..constants import REPROCESS_SCHEDULE
from ..partitions import teacher_partitions
from ..settings import default_reprocess_cron
from .jobs import reprocess_job


def build_reprocess_schedule(cron: str | None = None) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=REPROCESS_SCHEDULE,
        job=reprocess_job,
        cron_schedule=cron or default_reprocess_cron(),
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Re-process every teacher partition (cron from DLCOT_REPROCESS_CRON; stopped by default).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.isoformat()
        keys = context.instance.get_dynamic_partitions(teacher_partitions.name)
        if not keys:
            return dg.SkipReason("no teacher partitions yet")
        return [dg.RunRequest(run_key=f"{key}:{stamp}", partition_key=key) for key in keys]

    return _schedule


reprocess_schedule = build_reprocess_schedule()
