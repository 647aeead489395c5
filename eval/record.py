"""Re-records which seed questions the extractive answerer passes (after a deliberate change).

    QA_DATA_DIR=$(mktemp -d) python -m eval.record
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.runner import load_set, run
from qa.service import QAService
from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    service = QAService(Settings())
    service.ingest([ROOT / "seeds"])
    results = run(service, load_set(ROOT / "eval" / "seed.jsonl"))
    expected = {r.id: r.passed for r in results}
    target = ROOT / "eval" / "expected" / "seed-extractive.json"
    target.write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    print(f"{sum(expected.values())}/{len(expected)} pass; written to {target}")


if __name__ == "__main__":
    main()
