"""Test app for the official plugin's cases: x² + y², or a RuntimeError when `error` is set.

Our own code with the objective of hydra-optuna-sweeper's `example/sphere.py`; its config is the
official one (see conf/config.yaml).
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def sphere(cfg: DictConfig) -> float:
    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
