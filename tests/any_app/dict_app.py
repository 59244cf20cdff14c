"""A plain DictConfig app (tests/any_app/conf/dict_app.yaml)."""

import hydra
from climb import climb
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="dict_app")
def main(cfg: DictConfig) -> float:
    return climb(float(cfg.x), int(cfg.steps))


if __name__ == "__main__":
    main()
