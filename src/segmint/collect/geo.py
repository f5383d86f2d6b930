"""Where an IP address is: country from the bundled geoip2fast data, region and city from an
optional MaxMind City database; and country names normalized to ISO 3166-1 alpha-2 codes.

Lookups never raise for bad input (private, reserved or malformed addresses give an empty
``GeoResult``); only a misconfigured City database does, when the locator is built.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geoip2.database
import geoip2.errors
import maxminddb

from segmint.errors import ConfigurationError

if TYPE_CHECKING:
    from segmint.settings import Settings

# Addresses repeat (a visitor sends many events), and a miss costs a few microseconds in
# geoip2fast plus a tree walk in the .mmdb file; 32k entries is a few MB.
LOOKUP_CACHE_SIZE = 32_768

# The IPv4+IPv6 country file shipped inside the geoip2fast wheel (the default file is IPv4 only).
GEOIP2FAST_DATA_FILE = "geoip2fast-ipv6.dat.gz"


@dataclass(frozen=True, slots=True)
class GeoResult:
    """Location of one address; each part is None when unknown."""

    country: str | None = None
    region: str | None = None
    city: str | None = None


_UNKNOWN = GeoResult()


class GeoLocator:
    """Looks up addresses: geoip2fast for the country, and when ``city_db`` is given a MaxMind
    GeoIP2/GeoLite2 City file for region and city (its country wins when it has one)."""

    def __init__(self, city_db: Path | None = None) -> None:
        """Open ``city_db`` now, so a wrong path fails at startup rather than on the first
        event; raise ``ConfigurationError`` if it is missing or not a City database."""
        self.city_db = city_db
        self._city_reader = _open_city_db(city_db) if city_db is not None else None
        self._cached_lookup = lru_cache(maxsize=LOOKUP_CACHE_SIZE)(self._lookup)

    @classmethod
    def from_settings(cls, settings: Settings) -> GeoLocator:
        """A locator using ``settings.geoip_city_db`` (``SEGMINT_GEOIP_CITY_DB``) if set."""
        return cls(settings.geoip_city_db)

    def lookup(self, ip: str) -> GeoResult:
        """Country (ISO alpha-2), region and city of ``ip``; all None for private, reserved,
        unknown or malformed addresses. Results are cached per address."""
        return self._cached_lookup(ip)

    def close(self) -> None:
        """Release the City database file, if one is open."""
        if self._city_reader is not None:
            self._city_reader.close()
            self._city_reader = None
        self._cached_lookup.cache_clear()

    def _lookup(self, ip: str) -> GeoResult:
        address = _public_address(ip)
        if address is None:
            return _UNKNOWN
        region = city = country = None
        if self._city_reader is not None:
            country, region, city = _city_lookup(self._city_reader, address)
        if country is None:
            country = _fast_country(address)
        if country is None and region is None and city is None:
            return _UNKNOWN
        return GeoResult(country, region, city)


def _public_address(ip: str) -> str | None:
    """The canonical text of ``ip`` if it is a globally routable address, else None."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d comes from dual-stack sockets; the IPv4 tables know it as a.b.c.d.
        address = address.ipv4_mapped
    return str(address) if address.is_global else None


def _open_city_db(path: Path) -> geoip2.database.Reader:
    if not path.is_file():
        raise ConfigurationError(
            f"GeoIP City database {str(path)!r} does not exist or is not a file. Set "
            "SEGMINT_GEOIP_CITY_DB to the path of a MaxMind GeoIP2/GeoLite2 City .mmdb file, "
            "or unset it to locate countries only."
        )
    try:
        reader = geoip2.database.Reader(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise ConfigurationError(
            f"GeoIP City database {str(path)!r} is not a valid MaxMind .mmdb file ({exc}). "
            "Download GeoLite2-City.mmdb from MaxMind, or unset SEGMINT_GEOIP_CITY_DB."
        ) from exc
    database_type = reader.metadata().database_type
    if "City" not in database_type:
        reader.close()
        raise ConfigurationError(
            f"GeoIP database {str(path)!r} is a {database_type} database; region and city "
            "need a City database (GeoLite2-City.mmdb or GeoIP2-City.mmdb)."
        )
    return reader


def _city_lookup(
    reader: geoip2.database.Reader, address: str
) -> tuple[str | None, str | None, str | None]:
    try:
        response = reader.city(address)
    except (geoip2.errors.AddressNotFoundError, ValueError):
        # Not in the file, or an IPv6 address in an IPv4-only file: geoip2fast still knows
        # the country.
        return None, None, None
    return (
        response.country.iso_code,
        response.subdivisions.most_specific.name,
        response.city.name,
    )


_fast_lock = threading.Lock()
_fast_db: Any = None


def _fast_country(address: str) -> str | None:
    code = _geoip2fast().lookup(address).country_code
    # geoip2fast answers "--" / "" for networks it does not place; only real codes count.
    return code if isinstance(code, str) and len(code) == 2 and code.isalpha() else None


def _geoip2fast() -> Any:
    """The process-wide geoip2fast database, loaded on first use (~0.2 s, ~40 MB): it keeps
    its tables in module globals, so one instance per process is all there can be."""
    global _fast_db
    if _fast_db is None:
        with _fast_lock:
            if _fast_db is None:
                from geoip2fast import GeoIP2Fast

                try:
                    # The library prints progress when verbose; keep stdout clean regardless.
                    with contextlib.redirect_stdout(io.StringIO()):
                        _fast_db = GeoIP2Fast(
                            verbose=False, geoip2fast_data_file=GEOIP2FAST_DATA_FILE
                        )
                except Exception as exc:  # GeoIPError: its data file is missing or broken
                    raise ConfigurationError(
                        f"geoip2fast could not load its country data {GEOIP2FAST_DATA_FILE!r} "
                        f"({exc}); reinstall it: pip install --force-reinstall geoip2fast"
                    ) from exc
    return _fast_db


# English country names -> ISO 3166-1 alpha-2. Names as MaxMind (and so geoip2fast) spells
# them, the tz database's spellings, and common aliases people type into address forms.
# Matching ignores case, accents, punctuation, "&" vs "and", a leading "The" and "St" vs
# "Saint" (see _name_key), so each country needs only its distinct spellings here.
_COUNTRY_NAMES = (
    "AD:Andorra;AE:United Arab Emirates;AF:Afghanistan;AG:Antigua and Barbuda;AI:Anguilla;"
    "AL:Albania;AM:Armenia;AO:Angola;AQ:Antarctica;AR:Argentina;AS:American Samoa;AT:Austria;"
    "AU:Australia;AW:Aruba;AX:Åland Islands;AZ:Azerbaijan;BA:Bosnia and Herzegovina;"
    "BB:Barbados;BD:Bangladesh;BE:Belgium;BF:Burkina Faso;BG:Bulgaria;BH:Bahrain;BI:Burundi;"
    "BJ:Benin;BL:Saint Barthélemy;BM:Bermuda;BN:Brunei;BO:Bolivia;"
    "BQ:Bonaire, Sint Eustatius, and Saba;BR:Brazil;BS:Bahamas;BT:Bhutan;BV:Bouvet Island;"
    "BW:Botswana;BY:Belarus;BZ:Belize;CA:Canada;CC:Cocos (Keeling) Islands;CD:DR Congo;"
    "CF:Central African Republic;CG:Congo Republic;CH:Switzerland;CI:Ivory Coast;"
    "CK:Cook Islands;CL:Chile;CM:Cameroon;CN:China;CO:Colombia;CR:Costa Rica;CU:Cuba;"
    "CV:Cabo Verde;CW:Curaçao;CX:Christmas Island;CY:Cyprus;CZ:Czechia;DE:Germany;"
    "DJ:Djibouti;DK:Denmark;DM:Dominica;DO:Dominican Republic;DZ:Algeria;EC:Ecuador;"
    "EE:Estonia;EG:Egypt;EH:Western Sahara;ER:Eritrea;ES:Spain;ET:Ethiopia;FI:Finland;"
    "FJ:Fiji;FK:Falkland Islands;FM:Federated States of Micronesia;FO:Faroe Islands;"
    "FR:France;GA:Gabon;GB:United Kingdom;GD:Grenada;GE:Georgia;GF:French Guiana;GG:Guernsey;"
    "GH:Ghana;GI:Gibraltar;GL:Greenland;GM:Gambia;GN:Guinea;GP:Guadeloupe;"
    "GQ:Equatorial Guinea;GR:Greece;GS:South Georgia and the South Sandwich Islands;"
    "GT:Guatemala;GU:Guam;GW:Guinea-Bissau;GY:Guyana;HK:Hong Kong;"
    "HM:Heard and McDonald Islands;HN:Honduras;HR:Croatia;HT:Haiti;HU:Hungary;ID:Indonesia;"
    "IE:Ireland;IL:Israel;IM:Isle of Man;IN:India;IO:British Indian Ocean Territory;IQ:Iraq;"
    "IR:Iran;IS:Iceland;IT:Italy;JE:Jersey;JM:Jamaica;JO:Jordan;JP:Japan;KE:Kenya;"
    "KG:Kyrgyzstan;KH:Cambodia;KI:Kiribati;KM:Comoros;KN:St Kitts and Nevis;KP:North Korea;"
    "KR:South Korea;KW:Kuwait;KY:Cayman Islands;KZ:Kazakhstan;LA:Laos;LB:Lebanon;"
    "LC:Saint Lucia;LI:Liechtenstein;LK:Sri Lanka;LR:Liberia;LS:Lesotho;LT:Lithuania;"
    "LU:Luxembourg;LV:Latvia;LY:Libya;MA:Morocco;MC:Monaco;MD:Moldova;ME:Montenegro;"
    "MF:Saint Martin;MG:Madagascar;MH:Marshall Islands;MK:North Macedonia;ML:Mali;MM:Myanmar;"
    "MN:Mongolia;MO:Macao;MP:Northern Mariana Islands;MQ:Martinique;MR:Mauritania;"
    "MS:Montserrat;MT:Malta;MU:Mauritius;MV:Maldives;MW:Malawi;MX:Mexico;MY:Malaysia;"
    "MZ:Mozambique;NA:Namibia;NC:New Caledonia;NE:Niger;NF:Norfolk Island;NG:Nigeria;"
    "NI:Nicaragua;NL:The Netherlands;NO:Norway;NP:Nepal;NR:Nauru;NU:Niue;NZ:New Zealand;"
    "OM:Oman;PA:Panama;PE:Peru;PF:French Polynesia;PG:Papua New Guinea;PH:Philippines;"
    "PK:Pakistan;PL:Poland;PM:Saint Pierre and Miquelon;PN:Pitcairn Islands;PR:Puerto Rico;"
    "PS:Palestine;PT:Portugal;PW:Palau;PY:Paraguay;QA:Qatar;RE:Réunion;RO:Romania;RS:Serbia;"
    "RU:Russia;RW:Rwanda;SA:Saudi Arabia;SB:Solomon Islands;SC:Seychelles;SD:Sudan;SE:Sweden;"
    "SG:Singapore;SH:Saint Helena;SI:Slovenia;SJ:Svalbard and Jan Mayen;SK:Slovakia;"
    "SL:Sierra Leone;SM:San Marino;SN:Senegal;SO:Somalia;SR:Suriname;SS:South Sudan;"
    "ST:São Tomé and Príncipe;SV:El Salvador;SX:Sint Maarten;SY:Syria;SZ:Eswatini;"
    "TC:Turks and Caicos Islands;TD:Chad;TF:French Southern Territories;TG:Togo;TH:Thailand;"
    "TJ:Tajikistan;TK:Tokelau;TL:Timor-Leste;TM:Turkmenistan;TN:Tunisia;TO:Tonga;TR:Türkiye;"
    "TT:Trinidad and Tobago;TV:Tuvalu;TW:Taiwan;TZ:Tanzania;UA:Ukraine;UG:Uganda;"
    "UM:U.S. Outlying Islands;US:United States;UY:Uruguay;UZ:Uzbekistan;VA:Vatican City;"
    "VC:St Vincent and Grenadines;VE:Venezuela;VG:British Virgin Islands;"
    "VI:U.S. Virgin Islands;VN:Vietnam;VU:Vanuatu;WF:Wallis and Futuna;WS:Samoa;YE:Yemen;"
    "YT:Mayotte;ZA:South Africa;ZM:Zambia;ZW:Zimbabwe;CI:Côte d'Ivoire;CV:Cape Verde;"
    "CZ:Czech Republic;FM:Micronesia;HM:Heard Island & McDonald Islands;MO:Macau;PN:Pitcairn;"
    "TL:East Timor;TR:Turkey;VC:St Vincent;XK:Kosovo;US:USA;US:U.S.;US:United States of America;"
    "GB:UK;GB:Great Britain;GB:Britain;GB:England;GB:Scotland;GB:Wales;GB:Northern Ireland;"
    "NL:Holland;KR:Korea;KR:Republic of Korea;RU:Russian Federation;SZ:Swaziland;"
    "MK:Macedonia;AE:UAE;CD:Democratic Republic of the Congo;CG:Republic of the Congo;"
    "VA:Holy See;VA:Vatican;PS:State of Palestine"
)


def _name_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = re.findall(r"[a-z0-9]+", plain.casefold().replace("&", " and "))
    if words and words[0] == "the":
        words = words[1:]
    return "".join("st" if word == "saint" else word for word in words)


_CODE_BY_NAME: dict[str, str] = {
    _name_key(name): code
    for code, name in (entry.split(":", 1) for entry in _COUNTRY_NAMES.split(";"))
}


@lru_cache(maxsize=1024)
def normalize_country(value: str) -> str | None:
    """ISO 3166-1 alpha-2 code (upper case) for a 2-letter code or an English country name
    ("united states", "U.S.A.", "Côte d'Ivoire"); "UK" gives "GB". Anything else is returned
    trimmed as given; blank gives None."""
    text = value.strip()
    if not text:
        return None
    code = _CODE_BY_NAME.get(_name_key(text))
    if code is not None:
        return code
    if len(text) == 2 and text.isascii() and text.isalpha():
        return text.upper()
    return text
