"""GS1 identifiers: GTIN and GLN check digits (mod-10, weights 3 and 1 from the right)."""

from __future__ import annotations

from hub.errors import BadInput


def check_digit(body: str) -> int:
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid(code: str, lengths: tuple[int, ...]) -> bool:
    return code.isascii() and code.isdigit() and len(code) in lengths and check_digit(code[:-1]) == int(code[-1])


def normalise_gtin(code: str) -> str:
    """Validate a GTIN-8/12/13/14 and return it as GTIN-14, the form we store and match on."""
    code = code.strip()
    if not is_valid(code, (8, 12, 13, 14)):
        raise BadInput(f"invalid GTIN {code[:20]!r}: wrong length or check digit", field="gtin")
    return code.zfill(14)


def validate_gln(code: str) -> str:
    code = code.strip()
    if not is_valid(code, (13,)):
        raise BadInput(f"invalid GLN {code[:20]!r}: wrong length or check digit", field="gln")
    return code
