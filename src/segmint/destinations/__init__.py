"""Destination platforms: one adapter module per platform, registered by name."""

from segmint.destinations import google_ads as google_ads
from segmint.destinations import linkedin as linkedin
from segmint.destinations import meta as meta
from segmint.destinations import tiktok as tiktok
from segmint.destinations.base import Destination, DestinationLimits, MembersChange
from segmint.destinations.registry import create, get_factory, names, register

__all__ = [
    "Destination",
    "DestinationLimits",
    "MembersChange",
    "create",
    "get_factory",
    "google_ads",
    "linkedin",
    "meta",
    "names",
    "register",
    "tiktok",
]
