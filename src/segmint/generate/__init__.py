"""Generated data: the Segment-spec messages of a simulated online shop, for demos, tests
and benchmarks (``segmint generate``).

``generate_events(users, days, seed=0, end=None, stats=None)`` yields the messages
(deterministic for a seed and ``end``); ``estimate_events(users, days)`` says roughly how
many there will be; ``GeneratorStats`` counts what a run produced.
"""

from segmint.generate.shop import GeneratorStats, estimate_events, generate_events

__all__ = ["GeneratorStats", "estimate_events", "generate_events"]
