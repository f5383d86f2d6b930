"""Generated data: a simulated online shop's Segment-spec messages for demos, tests and
benchmarks (``segmint generate``)."""

from segmint.generate.shop import GeneratorStats, estimate_events, generate_events

__all__ = ["GeneratorStats", "estimate_events", "generate_events"]
