"""`bench/run.py --merge`: a run's figures laid over the last results.json, one (size, step,
backend) at a time.

A step this run measured at a size replaces the earlier figures of that step there for the
backends it measured; every other step, and every other backend of a step, keeps the earlier
figures, stamped with the run that measured them (`kept`, and `kept_backends` for a backend's
part of a step), so a partial re-run (one step at the largest size with one backend, say) lands
in the tables without dropping or disguising the rest.
"""

from __future__ import annotations

import copy

# The steps with figures per size, and what else a step's figures make ("int8_speedup" is computed from "ingest").
SIZE_STEPS = ("ingest", "llamaindex", "query", "coldstart", "server")
PER_BACKEND = ("ingest", "query", "coldstart", "server")  # figures keyed by backend
PARTS = {"ingest": ("int8_speedup",)}


def kept_steps(section: dict) -> dict:
    """{step: the run it was measured in} for a size's steps kept from earlier runs (older files: one "run" a size)."""
    if "run" in section:  # written before per-step stamps: the whole size came from that run
        return {step: section["run"] for step in SIZE_STEPS if step in section}
    return dict(section.get("kept", {}))


def kept_run(results: dict, size: str | None, step: str, backend: str | None = None) -> dict | None:
    """The earlier run a figure was kept from, or None for this run's: `step` (or a part of one,
    such as "int8_speedup") at `size` for `backend`, or the import check (size None), the one step
    not made per size."""
    if size is None:
        return results.get("imports_kept") if step == "imports" else None
    section = results.get("sizes", {}).get(size, {})
    if backend is not None and (run := section.get("kept_backends", {}).get(step, {}).get(backend)):
        return run
    kept = kept_steps(section)
    whole = next((whole for whole, parts in PARTS.items() if step in parts), None)  # files from before parts had stamps
    return kept.get(step) or (kept.get(whole) if whole else None)


def merged(current: dict, earlier: dict) -> dict:
    """`current` with every (size, step, backend) it lacks taken from `earlier`; neither argument is changed."""
    results = copy.deepcopy(current)
    stamp = {"date": earlier["machine"]["date"], "git_commit": earlier["machine"]["git_commit"]}
    for size, old in earlier.get("sizes", {}).items():
        section = results["sizes"].setdefault(size, {"corpus": old["corpus"]})
        kept, backends = kept_steps(section), copy.deepcopy(section.get("kept_backends", {}))

        def run_of(step: str, backend: str | None = None, size: str = size) -> dict:
            return kept_run(earlier, size, step, backend) or stamp  # a figure kept once keeps the run that measured it

        for step in SIZE_STEPS:
            if step not in old:
                continue
            if step not in section:
                section[step] = copy.deepcopy(old[step])
                kept[step] = run_of(step)
                if step in old.get("kept_backends", {}):
                    backends[step] = copy.deepcopy(old["kept_backends"][step])
            elif step in PER_BACKEND:
                for backend in [b for b in old[step] if b not in section[step]]:  # in the earlier order
                    section[step][backend] = copy.deepcopy(old[step][backend])
                    backends.setdefault(step, {})[backend] = run_of(step, backend)
            for part in PARTS.get(step, ()):  # e.g. the int8 speedup of a run that measured both backends
                if part in old and part not in section:
                    section[part] = copy.deepcopy(old[part])
                    kept[part] = run_of(part)
        section.pop("run", None)
        if kept:
            section["kept"] = kept
        if backends:
            section["kept_backends"] = backends
    if not current.get("imports") and earlier.get("imports"):  # the one step that is not per size
        results["imports"] = copy.deepcopy(earlier["imports"])
        results["imports_kept"] = earlier.get("imports_kept", stamp)
    measured = {(size, step) for size, section in current.get("sizes", {}).items() for step in SIZE_STEPS if step in section}
    for row in earlier.get("skipped", []):  # an earlier skip stays while nothing measured replaces it
        replaced = (row["size"], row["step"]) in measured or (row["step"] == "every step" and row["size"] in current["sizes"])
        if not replaced and row not in results["skipped"]:
            results["skipped"].append(row)
    return results
