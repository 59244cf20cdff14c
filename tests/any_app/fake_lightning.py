"""A stand-in for Lightning's callback base: what a Lightning Trainer needs of every callback."""


class Callback:
    @property
    def state_key(self) -> str:
        return type(self).__qualname__


class EarlyStopping(Callback):
    def __init__(self, patience: int = 3) -> None:
        self.patience = patience
