"""Durations as operators write them: a number of seconds, or a text such as '90s' or '2h'.

Every duration setting has one of these types, so `poll_interval_s = "2m"` means the same in
every table, and the command line's `--tick-s 1m` reads the same way.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DAY_S = _UNIT_S["d"]


def parse_duration_s(text: str | float) -> float:
    """'90s', '15m', '2h', '1d' or a bare number of seconds, as seconds."""
    if isinstance(text, bool):
        raise ValueError("a duration must be a number of seconds or a text such as '2h'")
    if isinstance(text, int | float):
        return float(text)
    if not isinstance(text, str):
        raise ValueError("a duration must be a number of seconds or a text such as '2h'")
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as '90s', '15m' or '2h'")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def parse_duration_days(text: str | float) -> float:
    """A number of days, or a duration text ('36h', '30d') as days."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    return parse_duration_s(text) / _DAY_S


DurationS = Annotated[float, BeforeValidator(parse_duration_s), Field(gt=0)]
"""A duration in seconds that must be more than zero."""

DurationOrZeroS = Annotated[float, BeforeValidator(parse_duration_s), Field(ge=0)]
"""A duration in seconds where zero turns the thing off."""

DurationDays = Annotated[float, BeforeValidator(parse_duration_days), Field(gt=0)]
"""A duration in days, for settings named `*_days`."""
