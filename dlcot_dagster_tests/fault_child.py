"""Child process of the fault tests: materializes the ingest + DLCoT assets of one partition into a store.

    python -m dlcot_dagster_tests.fault_child LANDING STORE TEACHER [--only ASSET] [--fsize BYTES] [--batch-size N]

``--fsize`` caps the size of any file this process writes (RLIMIT_FSIZE, the kernel's own limit: a write past
it fails with EFBIG, as on a full disk). Prints ``SUCCESS True|False`` and the step errors.
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("landing")
    ap.add_argument("store")
    ap.add_argument("teacher")
    ap.add_argument("--only", default=None)
    ap.add_argument("--fsize", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=4)
    a = ap.parse_args(argv)

    import dagster as dg

    from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
    from dlcot_dagster.defs.benchmarks import BenchmarksResource
    from dlcot_dagster.defs.decontam.resources import DecontamResource
    from dlcot_dagster.defs.io_managers import ParquetIOManager
    from dlcot_dagster.defs.partitions import teacher_partitions
    from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
    from dlcot_dagster_tests.test_dagster_dlcot import ASSETS

    # everything is imported (and the tokenizer cached) before the limit applies
    TokenizerResource().counter(a.teacher)
    if a.fsize is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an over-limit write then fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (a.fsize, a.fsize))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(teacher_partitions.name, [a.teacher])
    result = dg.materialize(
        ASSETS,
        selection=a.only.split(",") if a.only else None,
        partition_key=a.teacher,
        instance=instance,
        raise_on_error=False,
        run_config=None if a.only else {"ops": {"raw_traces": {"config": {"batch_size": a.batch_size, "workers": 1}}}},
        resources={
            "landing_zone": LandingZoneResource(root=a.landing),
            "tokenizer": TokenizerResource(),
            "parquet_io_manager": ParquetIOManager(base_dir=a.store),
            "dlcot_engine": DLCoTEngineResource(batch_size=a.batch_size, workers=1),
            "benchmarks": BenchmarksResource(),
            "decontam": DecontamResource(),
        },
    )
    print("SUCCESS", result.success, flush=True)
    for ev in result.all_events:
        if ev.is_step_failure:
            print("STEP FAILED", ev.step_key, ev.step_failure_data.error.to_string(), flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
