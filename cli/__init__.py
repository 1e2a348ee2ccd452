"""The `lqm` command line: a thin click layer over `larq_methods` and `zoo`."""
