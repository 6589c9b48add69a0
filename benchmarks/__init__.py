"""Benchmark scripts: each measures whole processes and prints its figures (`make bench`)."""
