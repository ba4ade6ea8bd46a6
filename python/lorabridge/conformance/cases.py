"""What every case-by-case harness shares: reading a manifest's cases and running them one by one, each failure
reported by case id without stopping the others."""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Optional


class CaseError(RuntimeError):
    """A case that cannot be run as written (bad manifest entry, missing input): reported without a traceback."""


def read_cases(manifest: Path) -> Optional[tuple[Path, dict[str, Any], Mapping[str, Any]]]:
    """The manifest's folder, its JSON and its ``cases``; ``None`` (reported) when it has none."""
    manifest = Path(manifest)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    cases = data.get("cases")
    if not isinstance(cases, Mapping) or not cases:
        print(f"{manifest}: no cases", file=sys.stderr)
        return None
    return manifest.resolve().parent, data, cases


def run_cases(cases: Mapping[str, Any], out_dir: Path, body: Callable[[str, Mapping[str, Any]], None]) -> int:
    """Runs ``body(case_id, case)`` for every case, printing ``ok``/``FAIL`` lines and a summary; returns the exit
    code (1 when any case failed). Unexpected exceptions also print their traceback."""
    failed = 0
    started = time.perf_counter()
    for case_id, case in cases.items():
        t0 = time.perf_counter()
        try:
            body(case_id, case)
        except Exception as e:
            failed += 1
            print(f"FAIL {case_id}: {type(e).__name__}: {e}", file=sys.stderr)
            if not isinstance(e, (CaseError, ValueError)):
                traceback.print_exc()
            continue
        print(f"ok   {case_id} ({time.perf_counter() - t0:.2f}s)")
    print(f"{len(cases) - failed}/{len(cases)} cases written to {out_dir} in {time.perf_counter() - started:.1f}s")
    return 1 if failed else 0
