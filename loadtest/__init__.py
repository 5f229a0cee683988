"""Load tests, benchmarks and the mock provider they (and the test suite) run against."""
