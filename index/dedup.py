"""Near-duplicate articles (the same wire story on several outlets) by MinHash over word shingles.

Each stored article keeps its MinHash in the ledger; an LSH index built from them at ingest
start finds, for a new article, any stored one whose estimated Jaccard similarity passes the
threshold. The copy records `duplicate_of` the first (canonical) article, so retrieval can
collapse them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

NUM_PERM = 64
SCHEME = "affine32"  # datasketch 2's default; stored signatures must be read back with it
SHINGLE = 5
THRESHOLD = 0.8
WORD = re.compile(r"\w+", re.UNICODE)


def minhash_of(text: str):
    from datasketch import MinHash

    words = WORD.findall(text.lower())
    shingles = {" ".join(words[i : i + SHINGLE]) for i in range(max(1, len(words) - SHINGLE + 1))}
    signature = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    signature.update_batch([s.encode("utf-8") for s in shingles])
    return signature


class NearDuplicates:
    def __init__(self, stored: Iterable[tuple[str, bytes]], canonical_of: dict[str, str | None]):
        from datasketch import MinHash, MinHashLSH

        self._lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
        self._signatures = {}
        self._canonical_of = dict(canonical_of)
        for doc_id, blob in stored:
            signature = MinHash(num_perm=NUM_PERM, hashvalues=np.frombuffer(blob, dtype=np.uint64), scheme=SCHEME)
            self._insert(doc_id, signature)

    def _insert(self, doc_id: str, signature) -> None:
        self._lsh.insert(doc_id, signature)
        self._signatures[doc_id] = signature

    def remove(self, doc_id: str) -> None:
        if doc_id in self._signatures:
            self._lsh.remove(doc_id)
            del self._signatures[doc_id]

    def add(self, doc_id: str, text: str) -> tuple[str | None, bytes]:
        """Register an article; returns (the canonical article it copies, or None; its signature)."""
        self.remove(doc_id)
        signature = minhash_of(text)
        canonical = None
        matches = sorted(
            (m for m in self._lsh.query(signature) if signature.jaccard(self._signatures[m]) >= THRESHOLD),
        )
        if matches:
            first = matches[0]
            canonical = self._canonical_of.get(first) or first
        self._insert(doc_id, signature)
        self._canonical_of[doc_id] = canonical
        return canonical, signature.hashvalues.astype(np.uint64).tobytes()
