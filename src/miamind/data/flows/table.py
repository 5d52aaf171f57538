"""The parsed table of flows (features, label codes, read report) and its cache."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cache import cached_arrays, fingerprint

# Bump when parsing changes, so cached tables from an older parser are not reused.
PARSER_VERSION = "1"


@dataclass
class FlowTable:
    """Parsed flows: ``features`` (N, F) float32 and ``label_codes`` (N,) indexing ``label_names``."""

    features: np.ndarray
    label_codes: np.ndarray
    label_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    report: dict

    @property
    def labels(self) -> np.ndarray:
        """Canonical label string of each row."""
        return np.asarray(self.label_names, dtype=object)[self.label_codes]

    def label_counts(self, mask: np.ndarray | None = None) -> dict[str, int]:
        codes = self.label_codes if mask is None else self.label_codes[mask]
        counts = np.bincount(codes, minlength=len(self.label_names))
        return {n: int(c) for n, c in zip(self.label_names, counts, strict=True) if c}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "features": self.features,
            "label_codes": self.label_codes,
            "label_names": np.asarray(self.label_names, dtype=str),
            "feature_names": np.asarray(self.feature_names, dtype=str),
            "report": np.asarray(json.dumps(self.report)),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> FlowTable:
        return cls(
            features=arrays["features"],
            label_codes=arrays["label_codes"],
            label_names=tuple(str(s) for s in arrays["label_names"]),
            feature_names=tuple(str(s) for s in arrays["feature_names"]),
            report=json.loads(str(arrays["report"])),
        )


def cached_table(
    namespace: str,
    files: Sequence[Path],
    read: Callable[[], FlowTable],
    options: Mapping[str, object],
    cache_dir: Path | None = None,
) -> FlowTable:
    """The parsed table from the cache, keyed by file contents + options, else ``read()`` it."""
    # Paths are in the key too: the cached report names the files it was read from.
    key = hashlib.sha256(
        json.dumps(
            {
                "files": fingerprint(files),
                "paths": [str(f) for f in files],
                "parser": PARSER_VERSION,
                **options,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:32]
    arrays = cached_arrays(namespace, key, lambda: read().to_arrays(), cache_dir)
    return FlowTable.from_arrays(arrays)
