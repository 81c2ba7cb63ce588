"""Development tools shared by the tests and the benchmarks (neither owns them; product code never imports them)."""
