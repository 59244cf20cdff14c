"""Callback implementations the training loop runs (see `trainscope.engine.callbacks` for the interface)."""
