"""Worker subprocess for :mod:`.runner`: one JSON request per stdin line,
one JSON reply per stdout line.  Runs math-verify in its own main thread
under an alarm (soft deadline); the parent kills it on overrun."""

from __future__ import annotations

import json
import sys

#: address-space cap for the worker (bytes); a memory bomb fails with
#: MemoryError instead of taking the machine down
ADDRESS_SPACE_LIMIT = 4 << 30


def _limit_memory() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = ADDRESS_SPACE_LIMIT if hard == resource.RLIM_INFINITY else min(hard, ADDRESS_SPACE_LIMIT)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except Exception:
        pass


def main() -> int:
    _limit_memory()
    from dlcot_dagster.domain.answers.runner import run_inprocess
    from dlcot_dagster.domain.answers.symbolic import warm_up

    warm_up()
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            eq, reason = run_inprocess(req["gold"], req["pred"], float(req["timeout_s"]), bool(req.get("memo")))
            reply = {"id": req_id, "equivalent": eq, "reason": reason}
        except Exception as exc:  # never die on a bad request
            reply = {"id": req_id, "equivalent": None, "reason": f"worker:error:{type(exc).__name__}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
