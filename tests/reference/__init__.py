"""The reference evaluator of audience definitions and the generators that feed it.

``evaluator`` is a deliberately simple pure-Python reading of docs/definition-semantics.md;
``strategies`` generates random definitions and warehouse rows for the differential test
(tests/compiler/test_differential.py) that compares it with the SQL compiler.
"""
