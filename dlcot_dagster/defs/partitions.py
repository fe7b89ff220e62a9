import dagster as dg

from .constants import TEACHER_PARTITIONS_NAME

# one partition per teacher model; the landing sensor adds them as folders appear
teacher_partitions = dg.DynamicPartitionsDefinition(name=TEACHER_PARTITIONS_NAME)
