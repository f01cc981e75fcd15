"""Plain JSON values from what a run's state holds, for result.json and checkpoint metadata."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """NaN and infinities become null, NumPy scalars and arrays, tuples and paths become
    numbers, lists and strings; anything else is left for json.dumps to refuse."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # NumPy
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
