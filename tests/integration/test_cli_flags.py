"""The task CLI: one meaning per short flag across all tasks, --help that works for every task, and each
result line printed once."""
from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import pytest
from invoke import Collection

import tasks
from tests.conftest import REPO

COLLECTION = Collection.from_module(tasks)


def invoke(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_each_short_flag_means_one_thing_everywhere():
    meaning = defaultdict(set)
    for name in COLLECTION.task_names:
        for arg in COLLECTION[name].get_arguments():
            for short in (n for n in arg.names if len(n) == 1):
                meaning[short].add(arg.name)
    assert meaning["b"] == {"build_dir"}
    assert {k: v for k, v in meaning.items() if len(v) > 1} == {}


@pytest.mark.parametrize("name", sorted(COLLECTION.task_names))
def test_help_works_for_every_task(name):
    res = invoke(name, "--help")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("Usage:") and "error" not in res.stderr


def test_runbook_prints_its_line_once(tmp_path):
    res = invoke("runbook", "--build-dir", tmp_path / "build")
    assert res.returncode == 0, res.stderr
    assert (res.stdout + res.stderr).count("runbook: ") == 1
