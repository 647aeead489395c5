"""`bench/run.py --merge`: a run's figures laid over the last results.json, one (size, step) at a time.

A step this run measured at a size replaces the earlier figures of that step there; every other
step keeps the earlier ones, stamped with the run that measured them, so a partial re-run (one
step at the largest size, say) lands in the tables without dropping or disguising the rest.
"""

from __future__ import annotations

import copy

# The steps with figures per size, and what else a step's figures make ("int8_speedup" is computed from "ingest").
SIZE_STEPS = ("ingest", "llamaindex", "query", "coldstart", "server")
PARTS = {"ingest": ("int8_speedup",)}


def kept_steps(section: dict) -> dict:
    """{step: the run it was measured in} for a size's steps kept from earlier runs (older files: one "run" a size)."""
    if "run" in section:  # written before per-step stamps: the whole size came from that run
        return {step: section["run"] for step in SIZE_STEPS if step in section}
    return dict(section.get("kept", {}))


def kept_run(results: dict, size: str | None, step: str) -> dict | None:
    """The earlier run a figure was kept from, or None for this run's: `step` at `size`, or the
    import check (size None), the one step not made per size."""
    if size is None:
        return results.get("imports_kept") if step == "imports" else None
    return kept_steps(results.get("sizes", {}).get(size, {})).get(step)


def merged(current: dict, earlier: dict) -> dict:
    """`current` with every (size, step) it lacks taken from `earlier`; neither argument is changed."""
    results = copy.deepcopy(current)
    stamp = {"date": earlier["machine"]["date"], "git_commit": earlier["machine"]["git_commit"]}
    for size, old in earlier.get("sizes", {}).items():
        section = results["sizes"].setdefault(size, {"corpus": old["corpus"]})
        old_kept = kept_steps(old)
        kept = kept_steps(section)
        for step in SIZE_STEPS:
            if step in section or step not in old:
                continue
            section[step] = copy.deepcopy(old[step])
            kept[step] = old_kept.get(step, stamp)  # a figure kept once keeps the run that measured it
            section.update({part: old[part] for part in PARTS.get(step, ()) if part in old})
        section.pop("run", None)
        if kept:
            section["kept"] = kept
    if not current.get("imports") and earlier.get("imports"):  # the one step that is not per size
        results["imports"] = copy.deepcopy(earlier["imports"])
        results["imports_kept"] = earlier.get("imports_kept", stamp)
    measured = {(size, step) for size, section in current.get("sizes", {}).items() for step in SIZE_STEPS if step in section}
    for row in earlier.get("skipped", []):  # an earlier skip stays while nothing measured replaces it
        replaced = (row["size"], row["step"]) in measured or (row["step"] == "every step" and row["size"] in current["sizes"])
        if not replaced and row not in results["skipped"]:
            results["skipped"].append(row)
    return results
