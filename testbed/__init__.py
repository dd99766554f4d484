"""Real processes and repositories that the tests and the benchmarks both start: child
processes cleaned up, Git repositories served by ``git daemon``, small apps for the dev
cluster. One copy for both, outside ``tests/`` (benchmarks never import tests) and outside
the package (nothing here ships)."""
