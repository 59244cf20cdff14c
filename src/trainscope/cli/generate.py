"""`trainscope-generate run=<run_dir> prompt="ROMEO:" max_new_tokens=200` / `python generate.py ...`: sample text
from a trained language model.

The run directory holds everything: the config rebuilds the model, the checkpoint has its weights and
`tokenizer/` turns the prompt into tokens and the tokens back into text. The continuations go to stdout (one
per sample, separated by a line of dashes when there are several), log lines to stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from trainscope.cli.errors import as_user_error, exit_on_user_error, hydra_errors_in_one_line
from trainscope.cli.eval import quote_path_arguments
from trainscope.cli.process_exit import exit_after
from trainscope.config.paths import config_dir
from trainscope.config.resolvers import register_resolvers
from trainscope.core.errors import ConfigError, report_user_error

SAMPLE_SEPARATOR = "-" * 40
USAGE = 'to sample from: trainscope-generate run=outputs/runs/<date>/<time>_<overrides> prompt="ROMEO:"'


def take_prompt(argv: list[str]) -> tuple[list[str], str | None]:
    """`argv` without its `prompt=` argument, and that argument's text exactly as typed.

    A prompt is free text: commas, `=`, quotes, brackets or `${` would mean something to Hydra's override
    grammar and to OmegaConf, so it never goes through them.
    """
    prompt = None
    rest = []
    for argument in argv:
        if argument.startswith("prompt="):
            prompt = argument.removeprefix("prompt=")
        else:
            rest.append(argument)
    return rest, prompt


def make_task(prompt: str | None) -> Callable[[DictConfig], None]:
    """Hydra's task function, with the prompt taken off the command line before Hydra parsed it."""

    def task(cfg: DictConfig) -> None:
        try:
            from trainscope.models.generation import Sampling  # torch loads here, not at --help
            from trainscope.session.generate_run import generate_from_run

            sampling = Sampling.checked(
                max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k, seed=cfg.seed
            )
            num_samples = cfg.num_samples
            if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
                raise ConfigError(f"num_samples must be a positive integer, got {num_samples!r}")
            samples = generate_from_run(
                Path(cfg.run),
                str(cfg.prompt) if prompt is None else prompt,
                sampling,
                num_samples,
                checkpoint=str(cfg.checkpoint),
                device=cfg.device,
                allow_targets=[str(module) for module in cfg.allow_targets],
            )
        except Exception as error:
            user_error = as_user_error(error)
            if user_error is None:
                raise
            report_user_error(user_error)
        print(f"\n{SAMPLE_SEPARATOR}\n".join(samples), flush=True)

    return task


def main() -> None:
    register_resolvers()
    prompt = None
    with exit_on_user_error():
        conf = config_dir()
        if not any(arg.startswith(("--help", "-h", "--cfg", "--info", "--hydra-help")) for arg in sys.argv[1:]):
            sys.argv[1:], prompt = take_prompt(sys.argv[1:])
            sys.argv[1:] = quote_path_arguments(sys.argv[1:], USAGE, writes_into_run=False)
    with hydra_errors_in_one_line():
        hydra.main(version_base="1.3", config_path=str(conf), config_name="generate")(make_task(prompt))()


def entrypoint() -> None:
    """`python generate.py` and `trainscope-generate`: `main()`, then an exit without the interpreter's slow
    teardown (`trainscope.cli.process_exit`)."""
    exit_after(main)


if __name__ == "__main__":
    entrypoint()
