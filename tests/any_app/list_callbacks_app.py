"""An app whose `callbacks` is a list (tests/any_app/conf/list_callbacks_app.yaml)."""

import hydra
from climb import climb
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="list_callbacks_app")
def main(cfg: DictConfig) -> float:
    callbacks = [instantiate(entry) for entry in cfg.callbacks]
    assert all(isinstance(callback, dict) for callback in callbacks)
    return climb(float(cfg.x), int(cfg.steps))


if __name__ == "__main__":
    main()
