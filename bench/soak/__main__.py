"""``python -m bench.soak``: run the soak, write its report, exit 1 if an invariant was violated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.soak.checks import INVARIANTS
from bench.soak.report import write_report
from bench.soak.run import SoakConfig, run_soak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--jobs", type=int, default=300, help="submissions (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the job mix and fault schedule")
    parser.add_argument("--report-dir", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--restart",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop and start the local AWS on its data folder midway (default on)",
    )
    parser.add_argument(
        "--heartbeat-seconds",
        type=int,
        default=30,
        help="BurnAndCompress HeartbeatSeconds for the run (0: as deployed, 180)",
    )
    parser.add_argument("--in-flight", type=int, default=6, help="executions running at once, at most")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the run's files here")
    args = parser.parse_args(argv)
    config = SoakConfig(
        jobs=args.jobs,
        seed=args.seed,
        restart=args.restart,
        heartbeat_seconds=args.heartbeat_seconds or None,
        in_flight=args.in_flight,
        work_dir=args.work_dir,
    )
    result = run_soak(config)
    path = write_report(result, args.report_dir)
    print(path.read_text(encoding="utf-8"))
    failed = sorted({violation.invariant for violation in result.violations}, key=list(INVARIANTS).index)
    print(
        f"soak: report {path}; {len(result.violations)} violations"
        + (f" ({', '.join(failed)})" if failed else "")
    )
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
