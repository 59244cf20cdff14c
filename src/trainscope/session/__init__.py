"""One run: build its parts, train, test, write metrics.json; continue a run; evaluate a finished one."""
