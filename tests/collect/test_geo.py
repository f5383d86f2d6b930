"""GeoLocator: country from the bundled geoip2fast data, region and city from a City .mmdb
(built here with mmdb_writer in the GeoIP2-City record shape), and country-name normalization."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from segmint.collect.geo import GeoLocator, GeoResult, normalize_country
from segmint.errors import ConfigurationError
from segmint.settings import get_settings


def city_record(country: str | None, region: str | None, city: str | None) -> dict[str, object]:
    """A record shaped like GeoIP2-City's (only the parts the locator reads)."""
    record: dict[str, object] = {}
    if country:
        record["country"] = {"iso_code": country, "names": {"en": country}}
    if region:
        record["subdivisions"] = [{"iso_code": "X", "names": {"en": region}}]
    if city:
        record["city"] = {"names": {"en": city}}
    return record


def write_city_db(path: Path, database_type: str = "GeoIP2-City") -> Path:
    writer = MMDBWriter(ip_version=4, database_type=database_type, languages=["en"])
    writer.insert_network(IPSet(["81.2.69.0/24"]), city_record("GB", "England", "London"))
    writer.insert_network(IPSet(["89.160.20.0/24"]), city_record("SE", "Östergötland", "Linköping"))
    # A record without a country: the locator takes geoip2fast's (1.1.1.1 is AU there).
    writer.insert_network(IPSet(["1.1.1.0/24"]), city_record(None, None, "Sydney"))
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def country_locator() -> GeoLocator:
    return GeoLocator()


@pytest.fixture(scope="module")
def city_locator(tmp_path_factory: pytest.TempPathFactory) -> GeoLocator:
    path = write_city_db(tmp_path_factory.mktemp("geo") / "City.mmdb")
    return GeoLocator(path)


# Public addresses whose country has long been stable in MaxMind's data, as geoip2fast's
# bundled file places them (checked offline against the installed data).
@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),  # Google Public DNS
        ("81.2.69.142", "GB"),  # MaxMind's own test address
        ("193.0.6.139", "NL"),  # RIPE NCC, Amsterdam
        ("2001:4860:4860::8888", "US"),  # Google Public DNS over IPv6
        ("::ffff:8.8.8.8", "US"),  # IPv4-mapped, as dual-stack sockets report it
        (" 8.8.8.8 ", "US"),
    ],
)
def test_country_comes_from_geoip2fast(country_locator: GeoLocator, ip: str, country: str) -> None:
    assert country_locator.lookup(ip) == GeoResult(country, None, None)


@pytest.mark.parametrize(
    "ip",
    [
        "192.168.1.10",
        "10.0.0.1",
        "127.0.0.1",
        "100.64.0.1",  # carrier-grade NAT
        "203.0.113.5",  # documentation range
        "::1",
        "fe80::1",
        "2001:db8::1",
        "not an ip",
        "",
        "999.1.1.1",
        "1.2.3.4:8080",
    ],
)
def test_private_reserved_and_malformed_addresses_have_no_location(
    country_locator: GeoLocator, city_locator: GeoLocator, ip: str
) -> None:
    assert country_locator.lookup(ip) == GeoResult()
    assert city_locator.lookup(ip) == GeoResult()


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.142", GeoResult("GB", "England", "London")),
        ("89.160.20.112", GeoResult("SE", "Östergötland", "Linköping")),
        # In the file without a country: city from the file, country from geoip2fast.
        ("1.1.1.1", GeoResult("AU", None, "Sydney")),
        # Not in the file: geoip2fast's country only.
        ("8.8.8.8", GeoResult("US", None, None)),
        # IPv6 in an IPv4-only file: falls back instead of failing.
        ("2001:4860:4860::8888", GeoResult("US", None, None)),
    ],
)
def test_city_database_gives_region_and_city(
    city_locator: GeoLocator, ip: str, expected: GeoResult
) -> None:
    assert city_locator.lookup(ip) == expected


def test_lookups_are_cached_per_address(tmp_path: Path) -> None:
    locator = GeoLocator(write_city_db(tmp_path / "City.mmdb"))
    first = locator.lookup("81.2.69.142")
    assert locator.lookup("81.2.69.142") is first
    locator.close()


def test_from_settings_uses_the_configured_city_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMINT_GEOIP_CITY_DB", str(write_city_db(tmp_path / "City.mmdb")))
    locator = GeoLocator.from_settings(get_settings())
    assert locator.lookup("81.2.69.142").city == "London"


def test_missing_city_db_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    with pytest.raises(ConfigurationError) as raised:
        GeoLocator(missing)
    assert str(missing) in raised.value.message
    assert "SEGMINT_GEOIP_CITY_DB" in raised.value.message


@pytest.mark.parametrize(
    "content", [b"", b"this is not a MaxMind database", b"\x00" * 4096], ids=repr
)
def test_city_db_that_is_not_an_mmdb_is_a_configuration_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "City.mmdb"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=r"not a valid MaxMind \.mmdb file"):
        GeoLocator(path)


def test_city_db_path_that_is_a_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        GeoLocator(tmp_path)


def test_country_database_in_place_of_city_is_a_configuration_error(tmp_path: Path) -> None:
    path = write_city_db(tmp_path / "Country.mmdb", database_type="GeoLite2-Country")
    with pytest.raises(ConfigurationError, match="GeoLite2-Country database"):
        GeoLocator(path)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("US", "US"),
        ("us", "US"),
        (" fr ", "FR"),
        ("UK", "GB"),
        ("United States", "US"),
        ("united states of america", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("Germany", "DE"),
        ("Netherlands", "NL"),
        ("The Netherlands", "NL"),
        ("Holland", "NL"),
        ("Côte d'Ivoire", "CI"),
        ("Cote dIvoire", "CI"),
        ("Ivory Coast", "CI"),
        ("Saint Kitts & Nevis", "KN"),
        ("St. Kitts and Nevis", "KN"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Czech Republic", "CZ"),
        ("South Korea", "KR"),
        ("Russian Federation", "RU"),
        ("Kosovo", "XK"),
        # Unknown names and other codes are kept as given, trimmed.
        ("Deutschland", "Deutschland"),
        ("DEU", "DEU"),
        ("  Atlantis ", "Atlantis"),
        ("", None),
        ("   ", None),
    ],
)
def test_normalize_country(given: str, expected: str | None) -> None:
    assert normalize_country(given) == expected
