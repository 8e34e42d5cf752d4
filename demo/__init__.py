"""Synthetic CRM data for demos and benchmarks (`dealgraph demo-data`, `serve --demo`).

A data generator, not a rule: it sits above resolvers/ (whose helpers it may call) and
below server/ (the CLI runs it). Nothing in resolvers/, schema/ or planner/ imports it.
"""
