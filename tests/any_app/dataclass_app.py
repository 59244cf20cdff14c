"""An app whose config is a dataclass schema (structured: no key can be added to it)."""

from dataclasses import dataclass

import hydra
from climb import climb
from hydra.core.config_store import ConfigStore


@dataclass
class Config:
    x: float = 0.5
    steps: int = 5


ConfigStore.instance().store(name="dataclass_app", node=Config)


@hydra.main(version_base="1.3", config_name="dataclass_app")
def main(cfg: Config) -> float:
    return climb(cfg.x, cfg.steps)


if __name__ == "__main__":
    main()
