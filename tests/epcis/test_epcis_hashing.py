"""The CBV 2.0 event hash and the EPC / Digital Link identifiers it is built from (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub import epc
from hub.epcis.hashing import event_hash, namespaces, pre_hash

DATA = Path(__file__).parent / "data"

# Answers of the GS1 reference implementation (epcis-event-hash-generator 1.9.3, default options) for these files.
# The eventIDs printed inside the official examples are not their hashes (the reference gives these), so the
# examples' own ids are never used as expected values.
KNOWN = {
    "Example_9.6.1-ObjectEvent.jsonld": [
        "df6523665bc5e5803d6c7b84f5a04e103694d8220f2abc4f2c74310e89f31bc6",
        "32547b2344d525ea60ab1b899d82a9011fd9c39bb26ed936e113066146f49941",
    ],
    "Example_9.6.3-AggregationEvent.jsonld": ["96b6bf98742a60dbfaa2dda08b63435ce67079d224ea27d63e55e62a7843b878"],
    "SensorDataExample1.jsonld": ["4eea934e9e0b466884b4b444a5924cabb9e649cdff0447b97e1b688c802a91bb"],
    "SensorDataExample10.jsonld": ["6dfb6e940ab80102b951989a22129949b0e54c43d2764a55b48586dba271599c"],
    "hash-vectors.jsonld": [
        "f615cc4e81f7fcfdb6ba0dfecdb81096ae1ab8086adef00f507f6c31a36a75e2",
        "657e5319994bcbdb441dcfeb9c4c28277fb72453031f08a77a1fc5c9de14cb6f",
        "4de0b1c3d0e6c1d81bc26fdd8eced5de780b5397ccc63b72fa1c37f0152b62a3",
        "e49a46fa3d0c6bab08de901aa58c9598d053d3981a24a2dea1e357332f003bed",
        "9d5bce1ef3b22450529f57f5b9d9812d92da7fb9c6652033393064eb0d7d4206",
        "2baf9250d4b611c6c82151a914809355ff7a587f00c984932630bb07a7b2f1ba",
    ],
}


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_event_hash_matches_the_reference_implementation(name: str) -> None:
    document = json.loads((DATA / name).read_text())
    ns = namespaces(document["@context"])
    hashes = [event_hash(event, ns) for event in document["epcisBody"]["eventList"]]
    assert hashes == [f"ni:///sha-256;{h}?ver=CBV2.0" for h in KNOWN[name]]


def test_pre_hash_is_canonical_whatever_the_spelling() -> None:
    document = json.loads((DATA / "Example_9.6.1-ObjectEvent.jsonld").read_text())
    event = document["epcisBody"]["eventList"][0]
    respelled = {
        **event,
        "eventTime": "2005-04-04T02:33:31.116Z",  # the same instant in UTC
        "epcList": list(reversed(event["epcList"])),
        "readPoint": {"id": "https://example.com/414/0614141073467/254/1234"},  # Digital Link on another host
        "eventID": "something else",  # never part of the hash
        "recordTime": "2030-01-01T00:00:00Z",
    }
    assert pre_hash(respelled) == pre_hash(event)
    assert event_hash({**event, "disposition": "in_progress"}) != event_hash(event)


@pytest.mark.parametrize(("uri", "link"), [
    ("urn:epc:id:sgtin:0614141.107346.2017", "https://id.gs1.org/01/10614141073464/21/2017"),
    ("urn:epc:class:lgtin:4012345.012345.998877", "https://id.gs1.org/01/04012345123456/10/998877"),
    ("urn:epc:idpat:sgtin:4012345.098765.*", "https://id.gs1.org/01/04012345987652"),
    ("urn:epc:id:sscc:0614141.1234567890", "https://id.gs1.org/00/106141412345678908"),
    ("urn:epc:id:sgln:0614141.07346.1234", "https://id.gs1.org/414/0614141073467/254/1234"),
    ("urn:epc:id:sgln:0614141.00888.0", "https://id.gs1.org/414/0614141008889"),
    ("urn:epc:id:pgln:4006381.00001", "https://id.gs1.org/417/4006381000017"),
    ("urn:epc:id:grai:4006381.00001.77", "https://id.gs1.org/8003/0400638100001777"),
    ("urn:epc:id:giai:4000001.111", "https://id.gs1.org/8004/4000001111"),
    ("https://brand.example/shop/01/4006381333931/10/B240315", "https://id.gs1.org/01/04006381333931/10/B240315"),
])
def test_identifiers_have_one_canonical_digital_link(uri: str, link: str) -> None:
    assert epc.canonical(uri) == link
    assert epc.canonical(link) == link


def test_keys_carry_gtin_lot_and_serial() -> None:
    lgtin = epc.parse("urn:epc:class:lgtin:4012345.012345.998877")
    assert lgtin is not None and (lgtin.kind, lgtin.gtin, lgtin.lot) == ("lgtin", "04012345123456", "998877")
    sgtin = epc.parse("https://id.gs1.org/01/10614141073464/21/2017")
    assert sgtin is not None and (sgtin.kind, sgtin.gtin, sgtin.serial) == ("sgtin", "10614141073464", "2017")
    sscc = epc.parse("urn:epc:id:sscc:0614141.1234567890")
    assert sscc is not None and sscc.kind == "sscc" and sscc.gtin is None


@pytest.mark.parametrize("uri", [
    "https://id.gs1.org/01/10614141073465/21/2017",  # wrong check digit
    "urn:epc:id:sgtin:0614141.107346",  # no serial
    "urn:epc:id:sscc:0614141.123",  # too short
    "http://transaction.acme.com/po/12345678",  # not a GS1 key
    "urn:epcglobal:cbv:bt:0614141073467:1152",
])
def test_what_is_no_gs1_key_is_not_parsed(uri: str) -> None:
    assert epc.parse(uri) is None


@pytest.mark.parametrize("uri", ["urn:epc:id:sgtin:0614141107346..1", "urn:epc:class:lgtin:4012345012345..L1",
                                 "urn:epc:id:sscc:06141411234567890.", "urn:epc:idpat:sgtin:0614141107346..*"])
def test_a_key_without_its_item_or_serial_reference_names_nothing(uri: str) -> None:
    # the reference's first digit (indicator or extension) leads the key: without it there is no key, and no crash
    assert epc.canonical(uri) is None and epc.parse(uri) is None


def test_an_sgtin_is_canonicalised_as_the_general_parser_does() -> None:
    # canonical() writes SGTINs directly; it must answer what parse() and digital_link answer
    for uri in ("urn:epc:id:sgtin:0614141.107346.2017", "urn:epc:id:sgtin:0614141.107346.",
                "urn:epc:id:sgtin:0614141.10734.1", "urn:epc:id:sgtin:061414a.107346.1",
                "urn:epc:id:sgtin:0614141.107346.a.b",
                "urn:epc:id:sgtin:0614141.107346.1\n", "urn:epc:id:sgtin:0614141.107346.x\ny",
                "urn:epc:id:sgtin:4012345.033393.0-1-2", "urn:epc:id:sgtin:"):
        key = epc.parse(uri)
        assert epc.canonical(uri) == (key.digital_link if key else None), uri
