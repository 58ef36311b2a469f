"""The distribution `pip install .` makes: its name, LICENSE, metadata, command and SQL files.

The wheel is built from this checkout (hatchling, from the dev extras, without build
isolation, so no network is needed) and read as a zip: what PyPI and pip would see.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode("utf-8")


def test_the_distribution_has_our_own_name_and_license(wheel: zipfile.ZipFile) -> None:
    assert Path(wheel.filename).name.startswith("identity_stitcher-")
    metadata = Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert metadata["Name"] == "identity-stitcher"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert _dist_info(wheel, "licenses/LICENSE") == (ROOT / "LICENSE").read_text("utf-8")
    assert "Apache License" in (ROOT / "LICENSE").read_text("utf-8").splitlines()[1]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().startswith("# stitcher")  # README is the package page
    classifiers = metadata.get_all("Classifier")
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "identity resolution" in metadata["Keywords"]
    assert any(url.startswith("Homepage, https://") for url in metadata.get_all("Project-URL"))


def test_the_wheel_has_the_command_the_package_and_its_sql(wheel: zipfile.ZipFile) -> None:
    assert "stitcher = stitcher.__main__:main" in _dist_info(wheel, "entry_points.txt")
    names = set(wheel.namelist())
    assert "stitcher/__main__.py" in names
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("stitcher/_sql/")}
    assert shipped == {p.name for p in (ROOT / "sql").glob("*.sql")}


def test_the_code_spark_executors_run_imports_only_pyarrow_and_the_standard_library() -> None:
    """The replays run on Spark's executors, which get stitcher's code shipped with the job and
    may have nothing but what pyspark needs (README, "On Apache Spark"): importing them must
    pull in no other package, and no stitcher module that does."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import stitcher.graph.replay, stitcher.graph.mixpanel_replay\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    stdlib = sys.stdlib_module_names
    allowed = {
        "stitcher",
        "stitcher.errors",
        # The subpackage's __init__ is a docstring only, for this reason.
        "stitcher.graph",
        "stitcher.graph.replay",
        "stitcher.graph.union_find",
        "stitcher.graph.mixpanel_replay",
    }
    # pyarrow loads numpy when it is installed (pyspark needs numpy anyway), and Cython's runtime.
    extension = ("pyarrow", "numpy", "cython_runtime")
    others = {
        name
        for name in loaded
        if name.split(".")[0] not in (*stdlib, *extension)
        and not name.startswith("_")
        and name not in allowed
    }
    assert others == set()
