"""README's shell commands and Python examples, run as written: every fenced `bash` block, the
cron line, and every `python` block.

Each block runs in a folder of its own, made from one template that holds what README's
commands expect to find: `fixtures/` (the repository's), `events/` (small generated events),
`export/` (the Mixpanel fixture), `out/` (the quick start's output, which README's explain
examples read), `out-yesterday/`, `my_junk.txt` and `stitcher.toml`. A command runs with bash in
that folder, the tested interpreter's bin folder first on PATH.

What is not run as written is in two tables, each entry with its reason, and both are checked
against README so neither goes stale: SKIPPED (commands that need what a test cannot reach)
and REWRITES (places and sizes replaced by local, small ones). A README command in neither runs
exactly as README shows it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import FIXTURES

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent

SKIPPED = {
    "pip install -e '.[dev]' && python -m pytest": "the test suite itself, which runs this test",
    "stitcher run --engine spark --spark-master spark://head:7077 --spark-conf "
    "spark.executor.memory=8g --spark-conf spark.driver.memory=8g --input /mnt/shared/events "
    "--output /mnt/shared/stitched": "no standalone cluster at spark://head:7077 from the tests",
    "stitcher run --engine spark --spark-master yarn --input s3a://analytics/segment/ "
    "--spark-conf spark.jars=/opt/jars/hadoop-aws.jar,/opt/jars/aws-sdk-bundle.jar --output "
    "s3a://analytics/identity/stitched": "no YARN or S3 from the tests (tests/test_spark.py "
    "reads and writes URLs through file://)",
}
# (README text, what runs instead, why)
REWRITES = [
    (re.compile(r"^pip install -e \S+ && "), "", "the tests run in that install already"),
    (re.compile(r"^pip install -e '\.\[spark\]'$"), "true", "pyspark is in the dev extras"),
    (re.compile(r"--events 1000000"), "--events 3000", "small data"),
    (re.compile(r"--master yarn --deploy-mode client"), "--master local[2]", "no YARN"),
    (re.compile(r"/mnt/shared/events"), "events", "local folders"),
    (re.compile(r"/mnt/shared/stitched"), "stitched", "local folders"),
    (re.compile(r"^cd /srv/identity && "), "", "the block's folder stands for /srv/identity"),
    (re.compile(r"/data/segment"), "events", "local folders"),
    (re.compile(r"/data/identity"), "identity", "local folders"),
]
# Exit codes README documents for a command, beside 0: a --fail-if breach exits 3.
BREACH = 3


@dataclass(frozen=True)
class Command:
    line: int  # README's line where the command starts
    text: str  # as README shows it, continuation lines joined, comments removed


def _without_comment(line: str) -> str:
    """The line up to a `#` that starts a comment (outside quotes, after a space)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_blocks(text: str) -> list[list[Command]]:
    """The shell commands of README, per fenced block: `bash` blocks, and `crontab` blocks
    (the command after the five schedule fields)."""
    blocks: list[list[Command]] = []
    kind = None
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        fence = re.fullmatch(r"```(\w*)\s*", raw)
        if fence:
            if kind is None:
                kind = fence.group(1) if fence.group(1) in ("bash", "crontab") else ""
                if kind:
                    blocks.append([])
            else:
                kind = None
            continue
        if not kind:
            continue
        line = _without_comment(raw)
        if not line:
            continue
        if not pending:
            start = number
            if kind == "crontab":
                line = line.split(None, 5)[5]
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        blocks[-1].append(Command(start, re.sub(r"\s+", " ", pending + line).strip()))
        pending = ""
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _as_run(command: str) -> str:
    for pattern, replacement, _ in REWRITES:
        command = pattern.sub(replacement, command)
    return command


def _stitcher(*args: str, cwd: Path) -> None:
    subprocess.run([str(BIN / "stitcher"), *args, "-q"], cwd=cwd, check=True)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    (folder / "fixtures").symlink_to(FIXTURES)
    (folder / "export").symlink_to(FIXTURES / "mixpanel_export")
    _stitcher("generate", "events", "--events", "3000", "--seed", "5", cwd=folder)
    _stitcher("generate", "events-yesterday", "--events", "2500", "--seed", "5", cwd=folder)
    _stitcher("run", "--input", "events-yesterday", "--output", "out-yesterday", cwd=folder)
    _stitcher("run", "--input", "fixtures/shared_family_computer", "--output", "out", cwd=folder)
    (folder / "my_junk.txt").write_text("unknown-device\n", encoding="utf-8")
    (folder / "stitcher.toml").write_text("dedupe = true\n", encoding="utf-8")
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "stitcher").symlink_to(BIN / "stitcher")
    return folder


def readme_python_blocks(text: str) -> list[tuple[int, str]]:
    """Each fenced `python` block of README: the line it starts on and its code."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, flags=re.M | re.S):
        blocks.append((text[: match.start()].count("\n") + 2, match.group(1)))
    return blocks


PYTHON_BLOCKS = readme_python_blocks(README.read_text(encoding="utf-8"))
# Python blocks that are not run, by a line they hold, with the reason.
PYTHON_SKIPPED = {
    'run_script(Path("stitcher_sql"), connection)': "needs the reader's own warehouse "
    "connection; tests/test_warehouse_sql.py and tests/test_snowflake.py call run_script over "
    "DuckDB and the Snowflake emulator",
}


def test_readme_python_examples_call_the_whole_api() -> None:
    code = "\n".join(block for _, block in PYTHON_BLOCKS)
    for skipped in PYTHON_SKIPPED:
        assert skipped in code, f"PYTHON_SKIPPED names a line README no longer has: {skipped}"
    for call in ("stitcher.run(", "stitcher.explain(", "stitcher.diff("):
        assert call in code, f"README shows no {call}...) example"


@pytest.mark.parametrize(
    ("line", "code"), [pytest.param(*b, id=f"line{b[0]}") for b in PYTHON_BLOCKS]
)
def test_readme_python_block_runs_as_written(
    line: int, code: str, template: Path, tmp_path: Path
) -> None:
    for skipped, why in PYTHON_SKIPPED.items():
        if skipped in code:
            pytest.skip(f"README line {line}: {why}")
    folder = tmp_path / "block"
    shutil.copytree(template, folder, symlinks=True)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"README line {line}: the block failed\n{done.stderr[-2000:]}"


def test_readme_has_the_blocks_this_test_expects() -> None:
    commands = [c.text for block in BLOCKS for c in block]
    assert len(BLOCKS) >= 9 and len(commands) >= 25
    for skipped in SKIPPED:
        assert skipped in commands, f"SKIPPED names a command README no longer has: {skipped}"
    for pattern, _, why in REWRITES:
        assert any(pattern.search(c) for c in commands), f"unused rewrite ({why}): {pattern}"


def _block_id(block: list[Command]) -> str:
    return f"line{block[0].line}"


def _marks(block: list[Command]) -> list[pytest.MarkDecorator]:
    spark = any("--engine spark" in c.text for c in block)
    return [pytest.mark.spark] if spark else []


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=_block_id(b), marks=_marks(b)) for b in BLOCKS],
)
def test_readme_block_runs_as_written(block: list[Command], template: Path, tmp_path: Path) -> None:
    folder = tmp_path / "block"
    shutil.copytree(template, folder, symlinks=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    for command in block:
        if command.text in SKIPPED:
            continue
        script = _as_run(command.text)
        done = subprocess.run(
            ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        allowed = {0, BREACH} if "--fail-if" in script else {0}
        assert done.returncode in allowed, (
            f"README line {command.line}: `{script}` exited {done.returncode}\n"
            f"{done.stderr[-2000:]}"
        )
