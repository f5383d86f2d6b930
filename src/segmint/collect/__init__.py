"""Collection: validate Segment-spec messages, de-duplicate, enrich, resolve identity, store."""
