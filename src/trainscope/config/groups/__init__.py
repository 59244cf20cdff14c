"""One typed dataclass per config group (`conf/<group>/`): the one place each key, its type, default and rule
are written (`trainscope.config.typed` says how)."""
