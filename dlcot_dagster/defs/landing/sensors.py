"""React to new teacher data in the landing zone."""


import json

import dagster as dg

from ...domain.landing import plan_changes
from ..constants import LANDING_SENSOR
from ..partitions import teacher_partitions
from ..resources import LandingZoneResource
from .jobs import reprocess_job


@dg.sensor(
    name=LANDING_SENSOR,
    job=reprocess_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Adds a teacher partition for each new landing sub-folder and requests one run per changed set of files "
        "(cursor over names/sizes/mtimes; run key = content hash, so the same content never runs twice); large "
        "teachers split into <teacher>~shard-NNN partitions (explicit count or DLCOT_SHARD_ABOVE_BYTES)."
    ),
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource):
    known = set(context.instance.get_dynamic_partitions(teacher_partitions.name))
    landing = landing_zone.landing(known)  # registered shard keys keep a teacher's shard count from shrinking
    cursor = json.loads(context.cursor) if context.cursor else {}
    teachers, changes, new_cursor = plan_changes(landing, cursor)
    for bad in landing.invalid_folders():
        context.log.warning(f"landing folder {bad!r} ignored: not a valid teacher name")
    superseded = getattr(landing, "superseded", lambda key: False)
    for c in changes:
        if superseded(c.teacher):
            context.log.warning(
                f"teacher {c.teacher!r} is sharded now (partitions {c.teacher}~shard-NNN): its unsharded partition "
                f"{c.teacher!r} gets one run with no files, so its tables become empty instead of double-counting "
                "the rows now in the shard partitions; delete that partition by hand if you no longer want it"
            )
    new = [t for t in teachers if t not in known]
    runs = [
        dg.RunRequest(
            run_key=c.run_key,
            partition_key=c.teacher,
            tags={"dlcot/teacher": c.teacher, "dlcot/content_hash": c.content_hash[:20]},
        )
        for c in changes
    ]
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[teacher_partitions.build_add_request(new)] if new else [],
        cursor=json.dumps(new_cursor, sort_keys=True),
        skip_reason=None if (runs or new) else "no new or changed teacher data",
    )
