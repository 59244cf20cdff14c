"""Helpers shared by the test modules: run the CLI, read event files, query TensorBoard, lay out data."""
