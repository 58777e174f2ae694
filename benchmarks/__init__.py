"""The cam_tasks benchmark suite: ``python -m benchmarks`` runs every benchmark and prints one
table, each figure next to a reference measured in the same run and the ratio between them.

Each group runs in its own Python process (``python -m benchmarks.<group>``), so that one
group's heap, event loop and garbage do not colour another's figures; a group prints its rows as
one JSON line for the runner to collect. Benchmarks print figures; they never fail a test run.
See docs/performance.md for what each row measures and the targets.
"""
