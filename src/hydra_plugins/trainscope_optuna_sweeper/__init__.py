"""`hydra/sweeper=trainscope_optuna`: Optuna 5 hyperparameter search for trainscope (see config.py)."""
