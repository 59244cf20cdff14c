"""The private names of Optuna, Hydra, OmegaConf and TensorBoard that trainscope relies on: one module per library.

No other module reaches into a library's private names; each adapter says what it reaches for and why, and
raises `PrivateNameMoved` (naming the name and the installed version) when an upgrade moved one. The bottom
layer of the import contract: it imports only the libraries themselves.
"""
