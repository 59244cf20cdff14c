"""`~` in a path value (`data.root=~/pets`, as the docs write it) means the home folder, as in a shell."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import TrainCLI
from trainscope.config.overrides import expand_home


def test_a_leading_tilde_is_expanded_and_other_values_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home dir"))
    home = tmp_path / "home dir"
    assert expand_home(["data.root=~/pets", "data.root=~", "x=~/a,b,~/c"]) == [
        f"data.root='{home}/pets'",
        f"data.root='{home}'",
        f"x='{home}/a',b,'{home}/c'",
    ]
    kept = ["data.root='~/pets'", "note=a~b", "~model", "-m", "x=${oc.env:HOME}/~", "+w=[~/a]", "data.root=/a/~b"]
    assert expand_home(kept) == kept


@pytest.mark.slow  # four train.py processes
def test_every_documented_home_path_composes(train: TrainCLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docs' `data.root=~/...` examples parse (Hydra's grammar alone rejects a bare `~`) and name $HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))  # the command's environment is a copy of this process's
    examples = {
        "data=image_folder": "~/pets",
        "data=image_folder data.channels=1": "~/scans",
        "data=cifar10": "~/torchvision-data",
        "data=fashion_mnist": "~/Downloads/fashion",
    }
    for option, root in examples.items():
        args = [*option.split(), f"data.root={root}", "--cfg", "job"]
        result = train(*args)
        assert result.returncode == 0, result.stderr
        assert yaml.safe_load(result.stdout)["data"]["root"] == str(home / root.removeprefix("~/")), option
