"""Destination platforms: one adapter module per platform, registered by name."""

from segmint.destinations import dv360 as dv360
from segmint.destinations import file_export as file_export
from segmint.destinations import ga4 as ga4
from segmint.destinations import google_ads as google_ads
from segmint.destinations import klaviyo as klaviyo
from segmint.destinations import linkedin as linkedin
from segmint.destinations import meta as meta
from segmint.destinations import tiktok as tiktok
from segmint.destinations import webhook as webhook
from segmint.destinations.base import Destination, DestinationLimits, MembersChange
from segmint.destinations.registry import create, get_factory, names, register

__all__ = [
    "Destination",
    "DestinationLimits",
    "MembersChange",
    "create",
    "dv360",
    "file_export",
    "ga4",
    "get_factory",
    "google_ads",
    "klaviyo",
    "linkedin",
    "meta",
    "names",
    "register",
    "tiktok",
    "webhook",
]
