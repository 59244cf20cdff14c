"""The official Optuna plugin's `params:` syntax parses to the same Optuna distributions here."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from trainscope.core.errors import ConfigError
from trainscope.sweep.optuna.search_space import grid_search_space, parse_search_space, search_space_domains


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("interval(0.1, 0.5)", FloatDistribution(0.1, 0.5)),
        ("interval(1, 10)", FloatDistribution(1.0, 10.0)),  # Hydra parses interval ends as floats
        ("tag(log, interval(1e-4, 1e-1))", FloatDistribution(1e-4, 1e-1, log=True)),
        ("tag(log, interval(8, 256))", FloatDistribution(8.0, 256.0, log=True)),
        ("range(1, 5)", IntDistribution(1, 5)),  # inclusive, as in the official plugin
        ("range(0, 10, 2)", IntDistribution(0, 10, step=2)),
        ("range(0.0, 1.0, 0.25)", FloatDistribution(0.0, 1.0, step=0.25)),
        ("choice(adam, sgd)", CategoricalDistribution(["adam", "sgd"])),
        ("choice(32, 64, 128)", CategoricalDistribution([32, 64, 128])),
        ("adam,sgd,adamw", CategoricalDistribution(["adam", "sgd", "adamw"])),
        ("choice(true, false)", CategoricalDistribution([True, False])),
        ("choice([16, 32], [32, 64])", CategoricalDistribution(["[16,32]", "[32,64]"])),
        ("shuffle(range(1, 4))", None),  # a shuffled range is a choice among its values
    ],
)
def test_each_sweep_form_gives_the_official_distribution(value: str, expected: object) -> None:
    space = parse_search_space({"x": value})
    distribution = space.distributions["x"]
    if expected is None:
        assert isinstance(distribution, CategoricalDistribution)
        assert sorted(distribution.choices) == [1, 2, 3]
    else:
        assert distribution == expected
    assert space.fixed_overrides == {}


def test_plain_values_are_fixed_and_command_line_overrides_win() -> None:
    space = parse_search_space(
        {"optimizer.lr": "interval(0.001, 0.1)", "trainer.max_epochs": 3, "model": "mlp"},
        ["hparams_search=synthetic", "optimizer.lr=0.01", "+extra.key=choice(1, 2)"],
    )
    assert set(space.distributions) == {"extra.key"}
    assert space.fixed_overrides == {
        "trainer.max_epochs": "trainer.max_epochs=3",
        "model": "model=mlp",
        "hparams_search": "hparams_search=synthetic",
        "optimizer.lr": "optimizer.lr=0.01",
    }
    overrides = space.trial_overrides({"extra.key": 2})
    assert overrides[-1] == "+extra.key=2"  # the + of an added key reaches the job
    assert "optimizer.lr=0.01" in overrides


def test_sampled_values_become_overrides_hydra_can_parse() -> None:
    space = parse_search_space(
        {"a": "interval(0.0, 1.0)", "b": "choice('two words', x)", "c": "choice([16], [32])", "d": "choice(true,false)"}
    )
    overrides = space.trial_overrides({"a": 1e-05, "b": "'two words'", "c": "[16]", "d": False})
    assert overrides == ["a=1e-05", "b='two words'", "c=[16]", "d=false"]
    reparsed = parse_search_space({}, overrides)
    assert reparsed.fixed_overrides["b"] == "b='two words'"


def test_invalid_entry_is_one_line_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"search space entry 'x=interval\(1\)' is invalid"):
        parse_search_space({"x": "interval(1)"})


def test_grid_needs_discrete_values() -> None:
    space = parse_search_space({"a": "choice(1, 2)", "b": "range(0, 4, 2)", "c": "range(0.0, 0.5, 0.25)"})
    assert grid_search_space(space.distributions) == {"a": [1, 2], "b": [0, 2, 4], "c": [0.0, 0.25, 0.5]}
    with pytest.raises(ConfigError, match="sampler=grid needs a finite set of values for 'lr'"):
        grid_search_space(parse_search_space({"lr": "interval(0.1, 1.0)"}).distributions)


def test_domains_describe_the_search_space() -> None:
    space = parse_search_space({"lr": "tag(log, interval(1e-4, 1e-1))", "opt": "adam,sgd", "n": "range(1, 3)"})
    assert search_space_domains(space.distributions) == {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "step": None, "log": True},
        "opt": {"type": "categorical", "values": ["adam", "sgd"]},
        "n": {"type": "int", "low": 1, "high": 3, "step": 1, "log": False},
    }


def test_sampler_and_pruner_groups_switch_without_leftover_keys() -> None:
    import subprocess
    import sys

    import yaml

    from tests.helpers.cli import REPO_ROOT

    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "hparams_search=synthetic",
            "hydra/sweeper/sampler=grid",
            "hydra/sweeper/pruner=hyperband",
            "--cfg",
            "hydra",
            "-p",
            "hydra.sweeper",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    sweeper = yaml.safe_load(result.stdout.split("\n", 1)[1])
    assert sweeper["sampler"] == {"_target_": "optuna.samplers.GridSampler", "seed": None}  # no TPE keys left
    assert sweeper["pruner"] == {
        "_target_": "optuna.pruners.HyperbandPruner",
        "min_resource": 1,
        "max_resource": "auto",
        "reduction_factor": 3,
        "bootstrap_count": 0,
    }
