"""TensorBoard output: the run's one writer, HParams sessions, and the loggers the `logging` switches select."""
