"""Audience sync machinery shared by every destination: normalization and hashing,
batching, retries and the error classes adapters map their platforms' errors to."""
