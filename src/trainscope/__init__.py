"""trainscope: Hydra-configured PyTorch training, watched live in TensorBoard, tuned with Optuna."""

__version__ = "0.1.0"
