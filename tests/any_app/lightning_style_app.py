"""An app that builds every `callbacks.*` entry as a Lightning callback, as lightning-hydra-template does."""

import hydra
from climb import climb
from fake_lightning import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="lightning_style_app")
def main(cfg: DictConfig) -> float:
    callbacks = [instantiate(entry) for entry in cfg.callbacks.values()]
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"{type(callback).__name__} is not a Lightning callback")
    return climb(float(cfg.x), int(cfg.steps))


if __name__ == "__main__":
    main()
