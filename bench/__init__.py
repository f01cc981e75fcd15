"""d3q benchmarks: `make bench` (python -m bench) prints every figure BENCHMARKS.md records."""
