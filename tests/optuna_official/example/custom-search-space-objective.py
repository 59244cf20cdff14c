"""Test app for the official plugin's `custom_search_space` case (the file name is what its config names).

`configure` adds two parameters per trial: `z` near the sampled `x`, and `+w` (a key the config lacks,
so its override adds it).
"""

import hydra
from omegaconf import DictConfig
from optuna.trial import Trial


@hydra.main(version_base=None, config_path="custom-search-space", config_name="config")
def four_dimensional_sphere(cfg: DictConfig) -> float:
    return sum(float(cfg[key]) ** 2 for key in ("w", "x", "y", "z"))


def configure(cfg: DictConfig, trial: Trial) -> None:
    spread = float(cfg.max_z_difference_from_x)
    x = trial.params["x"]
    trial.suggest_float("z", x - spread, x + spread)
    trial.suggest_float("+w", 0.0, 1.0)


if __name__ == "__main__":
    four_dimensional_sphere()
