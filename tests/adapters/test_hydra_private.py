"""The private Hydra names trainscope relies on are where `trainscope.adapters.hydra_private` reaches for them.

After a Hydra upgrade that moved one, a test here fails with one `PrivateNameMoved` message naming the private
name and the installed version (importing the adapter fails that way for a moved module or class).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import hydra
import pytest
from hydra.core.utils import JobStatus
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper

from trainscope.adapters import hydra_private
from trainscope.adapters.private_names import PrivateNameMoved
from trainscope.sweep.jobs import job_run_dir


def test_every_private_name_is_where_the_adapter_reaches_for_it(tmp_path: Path) -> None:
    hydra_private.check()
    assert issubclass(hydra_private.basic_launcher(), Launcher)
    assert issubclass(hydra_private.basic_sweeper(), Sweeper)

    sweeper = hydra_private.basic_sweeper()(max_batch_size=None, params={"optimizer.lr": "0.1,0.01"})
    assert hydra_private.params_overrides(sweeper) == ["optimizer.lr=0.1,0.01"]

    error = RuntimeError("the job never ran")
    refused = hydra_private.settled_job(["a=1"], tmp_path / "run", JobStatus.FAILED, error)
    assert hydra_private.job_error(refused) is error
    with pytest.raises(RuntimeError):  # why trainscope reads the private field: the public one raises
        _ = refused.return_value
    assert job_run_dir(refused) == tmp_path / "run"
    kept = hydra_private.settled_job(["a=1"], tmp_path / "run", JobStatus.COMPLETED, None)
    assert kept.return_value is None and kept.overrides == ["a=1"]


def test_a_moved_private_name_is_one_error_naming_it_and_the_installed_version() -> None:
    with pytest.raises(PrivateNameMoved) as raised:
        hydra_private.job_error(object())  # type: ignore[arg-type]  # stands for a JobReturn without the field
    message = str(raised.value)
    assert message.startswith(f"builtins.object._return_value is gone from hydra-core {hydra.__version__}: ")
    assert "trainscope.adapters.hydra_private" in message


def test_the_grid_sweeper_still_builds_after_hydra_scans_its_plugins_again() -> None:
    """Hydra's plugin scan executes its own and every plugin module again in place (a second scan in one process:
    in-process tests, notebooks); the grid sweeper must subclass, and the Optuna sweep compare against, the
    classes that scan defined, not stale twins kept from the first import."""
    import hydra._internal.core_plugins.basic_launcher as launcher_module
    import hydra._internal.core_plugins.basic_sweeper as sweeper_module

    import hydra_plugins.trainscope_grid_sweeper.grid_sweeper as grid_module

    for module in (launcher_module, sweeper_module, grid_module):  # the scan's order: Hydra's plugins first
        importlib.reload(module)
    sweeper = grid_module.TrainscopeGridSweeper(params={"optimizer.lr": "0.1,0.01"})
    assert isinstance(sweeper, sweeper_module.BasicSweeper)
    assert isinstance(launcher_module.BasicLauncher(), hydra_private.basic_launcher())
