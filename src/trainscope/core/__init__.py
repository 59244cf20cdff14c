"""The bottom layer: errors, the run-directory contract, checkpoint I/O and the callback interface."""
