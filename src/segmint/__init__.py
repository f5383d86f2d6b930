"""Segmint: an open-source audience engine for customer data platforms.

``import segmint`` gives the engine as a library: collect events, resolve identities,
evaluate audiences, with no server needed.
"""

__version__ = "0.1.0"
