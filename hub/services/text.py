"""Checks for the free-text fields clients send: trimmed, bounded, and free of control characters.

Bounds keep documents and indexes small and stop a client from storing megabytes in a name; control characters
in codes break exports, labels and the partner ERPs these codes are sent to.
"""

from __future__ import annotations

import unicodedata

from hub.errors import BadInput

CODE_MAX = 64  # SKU, location and lot codes, aliases
NAME_MAX = 200  # display names
UNIT_MAX = 32
IDENTITY_MAX = 512  # token issuers and subjects
EMAIL_MAX = 254


def _has_control(value: str) -> bool:
    # isprintable() is false for every such character (and for separators other than the space): a fast pass
    # for the usual text, the character by character check for the rest
    if value.isprintable():
        return False
    return any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") for char in value)


def clean_text(value: str, field: str, limit: int, label: str | None = None) -> str:
    """``value`` trimmed; BAD_USER_INPUT if empty, longer than ``limit`` or holding control characters."""
    label = label or field
    value = value.strip()
    if not value:
        raise BadInput(f"{label} must not be empty", field=field)
    if len(value) > limit:
        raise BadInput(f"{label} must be at most {limit} characters", field=field)
    if _has_control(value):
        raise BadInput(f"{label} must not contain control characters", field=field)
    return value


def clean_optional(value: str | None, field: str, limit: int, label: str | None = None) -> str | None:
    return None if value is None or not value.strip() else clean_text(value, field, limit, label)
