"""Strict JSON for metadata files: NaN/inf become null, numpy scalars and arrays become plain values."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(obj: Any) -> Any:
    """NaN/inf floats -> None, recursively; dict keys as strings (JSON has no NaN, only string keys)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)``: numpy integers/floats (non-finite -> None), arrays, paths, else str."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        f = float(o)
        return f if math.isfinite(f) else None
    if isinstance(o, np.ndarray):
        return json_safe(o.tolist())
    if isinstance(o, Path):
        return str(o)
    return str(o)
