"""One local Ray cluster for every Ray test of the session (Ray starts in ~5-10 s).

Each pytest-xdist worker that runs Ray tests starts its own local cluster (``ray.init`` with no
address never joins another), in its own temp dir; mark Ray tests ``xdist_group("ray")`` so that
``--dist loadgroup`` keeps them in one worker.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    import ray

    temp_dir = tempfile.mkdtemp(prefix="mxray", dir="/tmp")  # short: Ray's socket paths must fit
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=temp_dir,
        configure_logging=False,
        runtime_env={"env_vars": {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}},
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
