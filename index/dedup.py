"""Near-duplicate articles (the same wire story on several outlets) by MinHash over word shingles.

Each stored article keeps its MinHash in the ledger; an LSH index built from them at ingest
start finds, for a new article, any stored one whose estimated Jaccard similarity passes the
threshold. The copy records `duplicate_of` the first (canonical) article, so retrieval can
collapse them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property

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
        """`stored` is read, and datasketch imported (~0.6 s with the scipy modules it pulls in),
        at the first add or remove: an ingest embeds its first pool meanwhile."""
        self._stored = stored
        self._canonical_of = dict(canonical_of)

    @cached_property
    def _index(self):
        """The LSH index of the signatures, and the signatures by article id."""
        from datasketch import MinHash, MinHashLSH

        lsh, signatures = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM), {}
        for doc_id, blob in self._stored:
            signatures[doc_id] = MinHash(num_perm=NUM_PERM, hashvalues=np.frombuffer(blob, dtype=np.uint64), scheme=SCHEME)
            lsh.insert(doc_id, signatures[doc_id])
        return lsh, signatures

    def remove(self, doc_id: str) -> None:
        lsh, signatures = self._index
        if doc_id in signatures:
            lsh.remove(doc_id)
            del signatures[doc_id]

    def add(self, doc_id: str, text: str) -> tuple[str | None, bytes]:
        """Register an article; returns (the canonical article it copies, or None; its signature)."""
        self.remove(doc_id)
        signature = minhash_of(text)
        canonical = None
        lsh, signatures = self._index
        matches = sorted(m for m in lsh.query(signature) if signature.jaccard(signatures[m]) >= THRESHOLD)
        if matches:
            first = matches[0]
            canonical = self._canonical_of.get(first) or first
        lsh.insert(doc_id, signature)
        signatures[doc_id] = signature
        self._canonical_of[doc_id] = canonical
        return canonical, signature.hashvalues.astype(np.uint64).tobytes()
