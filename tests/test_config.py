"""Settings come from the dataclass fields: every documented variable maps to a field and parses by its type."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hub.config import Settings, SettingsError, TrustedIssuer, env_name

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_variables() -> set[str]:
    """Every ``LOTPULSE_*`` name of the README's configuration table, with the ``/ _SUFFIX`` shorthands expanded."""
    names: set[str] = set()
    for line in README.read_text().splitlines():
        if line.startswith("| `LOTPULSE_"):
            first, *shorthands = re.findall(r"`(_?[A-Z0-9_]+)`", line.split("|")[1])
            names.add(first)
            names.update(expand(first, shorthand) for shorthand in shorthands)
    return names


def expand(first: str, shorthand: str) -> str:
    """``_SUFFIX`` replaces ``first`` from the last word it starts with, else as many trailing words as it has."""
    words, suffix = first.split("_"), shorthand.lstrip("_").split("_")
    cut = max((i for i, word in enumerate(words) if i > 0 and word == suffix[0]), default=len(words) - len(suffix))
    return "_".join(words[:cut] + suffix)


def test_every_documented_variable_is_a_field() -> None:
    known = {env_name(item) for item in dataclasses.fields(Settings)}
    documented = documented_variables()
    assert len(documented) > 40
    assert documented - known == set()


def test_defaults_without_environment() -> None:
    assert Settings.from_env({}) == Settings()


def test_values_parse_by_field_type(tmp_path: Path) -> None:
    env = {
        "LOTPULSE_MONGODB_URI": "",
        "LOTPULSE_HOST": "0.0.0.0",
        "LOTPULSE_PORT": "9001",
        "LOTPULSE_DATA_DIR": str(tmp_path),
        "LOTPULSE_SIGNING_KEY_FILE": str(tmp_path / "keys.json"),
        "LOTPULSE_TOKEN_TTL_SECONDS": "60",
        "LOTPULSE_MAX_DEPTH": "",
        "LOTPULSE_ALLOWED_ORIGINS": " https://a.example , ,https://b.example",
        "LOTPULSE_WEBHOOK_ALLOW_PRIVATE": "yes",
        "LOTPULSE_WEBHOOK_WORKER": "false",
        "LOTPULSE_WEBHOOK_POLL_SECONDS": "0.25",
        "LOTPULSE_TRUSTED_ISSUERS": '[{"issuer": "https://idp", "jwks_url": "https://idp/jwks", "trusted_claims": 1,'
        ' "algorithms": ["ES256"]}]',
        "LOTPULSE_SESSION_SECRET": "",
    }
    settings = Settings.from_env(env)
    assert settings.mongodb_uri is None
    assert (settings.host, settings.port, settings.public_url) == ("0.0.0.0", 9001, "http://0.0.0.0:9001")
    assert settings.data_dir == tmp_path and settings.signing_key_file == tmp_path / "keys.json"
    assert settings.token_default_ttl_seconds == 60
    assert settings.max_depth == Settings.max_depth
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.webhook_allow_private is True and settings.webhook_worker is False
    assert settings.webhook_poll_seconds == 0.25
    assert settings.trusted_issuers == (
        TrustedIssuer("https://idp", "https://idp/jwks", "lotpulse", trusted_claims=True, algorithms=("ES256",)),
    )
    assert settings.session_secret is None


def test_public_url_when_set_is_kept() -> None:
    settings = Settings.from_env({"LOTPULSE_PORT": "9001", "LOTPULSE_PUBLIC_URL": "https://hub.example"})
    assert settings.public_url == "https://hub.example" and settings.issuer == "https://hub.example"


def test_bad_number_is_refused() -> None:
    with pytest.raises(SettingsError, match="LOTPULSE_PORT='eighty': not a whole number"):
        Settings.from_env({"LOTPULSE_PORT": "eighty"})


@pytest.mark.parametrize(("env", "says"), [
    ({"LOTPULSE_GC_THRESHOLDS": "abc"}, "LOTPULSE_GC_THRESHOLDS='abc': not a comma-separated list of whole numbers"),
    ({"LOTPULSE_GC_THRESHOLDS": "1,2,3,4"}, "LOTPULSE_GC_THRESHOLDS='1,2,3,4': at most three whole numbers"),
    ({"LOTPULSE_GC_THRESHOLDS": "100,-1"}, "at most three whole numbers >= 0"),
    ({"LOTPULSE_GC_FREEZE": "maybe"}, "LOTPULSE_GC_FREEZE='maybe': not a yes/no value"),
    ({"LOTPULSE_PORT": "70000"}, "LOTPULSE_PORT=70000: a port is a number from 0 to 65535"),
    ({"LOTPULSE_DB_TIMEOUT_SECONDS": "soon"}, "LOTPULSE_DB_TIMEOUT_SECONDS='soon': not a number"),
    ({"LOTPULSE_EVENT_BUS_MODE": "pigeon"}, "LOTPULSE_EVENT_BUS_MODE='pigeon': not one of auto, change_stream"),
    ({"LOTPULSE_LOG_FORMAT": "xml"}, "LOTPULSE_LOG_FORMAT='xml': not one of "),
    ({"LOTPULSE_CLOCK": "yesterday"}, "LOTPULSE_CLOCK='yesterday': 'wall' or an ISO 8601 instant"),
    ({"LOTPULSE_TRUSTED_ISSUERS": "[{"}, "LOTPULSE_TRUSTED_ISSUERS='\\[\\{': "),
    ({"LOTPULSE_TRUSTED_ISSUERS": '[{"issuer": "https://idp"}]'}, "each entry needs issuer, jwks_url"),
    ({"LOTPULSE_TRUSTED_ISSUERS": '{"issuer": "https://idp"}'}, "not a JSON list of objects"),
])
def test_unusable_values_are_refused_naming_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_yes_and_no_words_are_read_either_way() -> None:
    assert Settings.from_env({"LOTPULSE_GC_FREEZE": " Off "}).gc_freeze is False
    assert Settings.from_env({"LOTPULSE_GC_FREEZE": "YES"}).gc_freeze is True
