"""`invoke all` as one run: the stages in pipeline order, the definition loaded once and each of its
warnings printed once (it was loaded by every stage, and a global remembered what had been said)."""
from __future__ import annotations

import subprocess
import sys

import invoke

import tasks
from isobuild import loader, pipeline
from isobuild import validate as validate_module
from tests.conftest import REPO, need_tool


def test_invoke_all_loads_the_definition_once_and_warns_once(copy_example, tmp_path, monkeypatch, capsys):
    need_tool("rpmbuild", "rpmspec", "createrepo_c", "shellcheck")
    definition = copy_example("cluster.yaml")
    text = definition.read_text()
    assert "bridges: [bcn, ifn]" in text
    definition.write_text(text.replace("bridges: [bcn, ifn]", "bridges: [bcn, ifn, sn]"))  # a warning
    loads = []
    real_load = loader.load_definition

    def counted(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loader, "load_definition", counted)
    monkeypatch.setattr(pipeline, "load_definition", counted)
    # The real rpms stage, limited to the one package this host can build without downloads.
    real_rpms = tasks._rpms
    monkeypatch.setattr(tasks, "_rpms", lambda c, run, **kw: real_rpms(
        c, run, backend="rpmbuild", only="an-cluster-firstboot", **kw))
    build = tmp_path / "build"
    tasks.all_(invoke.Context(), cluster=str(definition), build_dir=str(build))
    out, err = capsys.readouterr()
    assert len(loads) == 1
    assert err.count("warning: using DEMO secrets") == 1
    assert err.count("the storage network is bridged") == 1
    for line in ("usb: skipped (needs --base Fedora-13-x86_64-DVD.iso)",
                 "pxe: skipped (needs --base Fedora-13-x86_64-DVD.iso and --url http://<install server>:<port>)"):
        assert line in out
    # each stage's line, in the order of pipeline.stages_of_all
    stages = (f"{definition}: cluster an-cluster is valid", "built: an-cluster-firstboot", "validate: ", "iso: ",
              "usb: skipped", "runbook: ", "pxe: skipped", "release: ")
    positions = [out.index(s) for s in stages]
    assert positions == sorted(positions), out
    assert (build / "out" / "an-cluster-addon.iso").is_file() and (build / "release").is_dir()


def test_tasks_of_one_command_line_share_the_definition(tmp_path):
    """`invoke check render` loads the definition once: the demo-secrets warning appears once."""
    res = subprocess.run([sys.executable, "-m", "invoke", "check", "render", "--build-dir", str(tmp_path / "b")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("warning: using DEMO secrets") == 1
    assert "cluster an-cluster is valid" in res.stdout and (tmp_path / "b" / "model.json").is_file()


def test_each_stage_of_a_run_is_timed_once_in_the_runs_log(copy_example, tmp_path, capsys):
    """`invoke all`'s loop on the cheap stages: BUILD/logs/all.log (0600) has one start and one end
    record per stage run, in order (a failed stage's end says so), none for a skipped one; the
    timing stays off stdout and stderr."""
    import re
    import stat

    need_tool("shellcheck")
    run = tasks._run(invoke.Context(), str(copy_example("cluster.yaml")), str(tmp_path / "build"))
    stages = {"check": lambda: tasks._check(run), "validate": lambda: tasks._validate(run),
              "runbook": lambda: tasks._runbook(run), "release": lambda: tasks._release(run)}
    order = [("check", None), ("validate", None), ("usb", "needs a base"), ("runbook", None), ("release", None)]
    try:
        tasks._run_stages(run, stages, order)
    except invoke.Exit as stop:  # release: nothing to release in this build dir (a real error)
        assert stop.code == 2
    else:
        raise AssertionError("release should have failed")
    out, err = capsys.readouterr()
    assert "usb: skipped (needs a base)" in out and "error: no ISO in " in err
    assert "stage " not in out + err
    log_file = run.build / pipeline.ALL_LOG
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    steps = re.findall(r" DEBUG stage (\S+): (start|done|failed)", log_file.read_text())
    assert steps == [("check", "start"), ("check", "done"), ("validate", "start"), ("validate", "done"),
                     ("runbook", "start"), ("runbook", "done"), ("release", "start"), ("release", "failed")]
    assert "WARNING using DEMO secrets" in log_file.read_text()  # every record of the run, not only timings


def test_a_render_is_validated_once_per_run(copy_example, tmp_path, monkeypatch, capsys):
    """`invoke validate` records its pass, so the disc stage of the same `invoke all` does not check the same
    render again (it did: the validate stage bypassed the stamp); a rerun of `invoke validate` still checks."""
    need_tool("shellcheck", "xmllint")
    calls = []
    real = validate_module.validate

    def counted(build, model):
        calls.append(build)
        return real(build, model)

    monkeypatch.setattr(validate_module, "validate", counted)  # wherever a stage takes it from
    monkeypatch.setattr(pipeline, "validate", counted)
    run = pipeline.Run(copy_example("cluster.yaml"), tmp_path / "build")
    tasks._validate(run)
    run.render(validated=True)  # what the iso, usb and pxe stages ask for
    assert len(calls) == 1
    tasks._validate(run)
    assert len(calls) == 2
    assert capsys.readouterr().out.count("validate: ") == 2
