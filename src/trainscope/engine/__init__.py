"""The training loop: Trainer, its typed settings, evaluation, and building the optimizer, scheduler and device."""
