"""%packages resolution as anaconda 13 / yum 3.2.27 do it (isobuild/pkgresolve.py), on hand-made
package lists: pattern forms, globs, provides, groups, exclusions, dependencies with versions."""
from __future__ import annotations

import pytest

from isobuild.pkgresolve import Dep, Group, PackageSection, Pkg, Repo, Sack, kickstart_packages, resolve, rpmvercmp

OURS = {"kernel": "rpmspecs/kernel/kernel.spec", "drbd-km-": "rpmspecs/drbd-km/drbd-km.spec"}


def pkg(name, version="1.0", release="1.fc13", epoch="0", arch="x86_64", provides=(), requires=(), files=()):
    own = Dep(name, "EQ", (epoch, version, release))
    return Pkg(name, arch, epoch, version, release, "test", [own, *provides], list(requires), set(files))


def sack(*pkgs, groups=()):
    core = Group("core", ["Core"], {"mandatory": ["bash"]})
    base = Group("base", ["Base"], {"default": ["vim-minimal"], "optional": ["not-there"]})
    return Sack([Repo("dvd", [pkg("bash"), pkg("vim-minimal"), *pkgs], [core, base, *groups])])


def names(missing):
    return [(m.kind, m.name) for m in missing]


@pytest.mark.parametrize("pattern", [
    "cman", "cman.x86_64", "cman-3.0.12", "cman-3.0.12-1.fc13", "cman-3.0.12-1.fc13.x86_64",
    "0:cman-3.0.12-1.fc13.x86_64", "cman-0:3.0.12-1.fc13.x86_64", "cm?n", "rgman*",
])
def test_every_pattern_form_yum_accepts(pattern):
    s = sack(pkg("cman", "3.0.12"), pkg("rgmanager", "3.0.12"))
    assert resolve(PackageSection([pattern], [], []), s, OURS) == []


@pytest.mark.parametrize("pattern", ["cman-3.0.13", "cman-3.0.12-2.fc13", "cman.i686", "Cman", "cmanx*"])
def test_patterns_that_do_not_match(pattern):
    s = sack(pkg("cman", "3.0.12"))
    assert names(resolve(PackageSection([pattern], [], []), s, OURS)) == [("package", pattern)]


def test_virtual_and_file_provides_match_like_yum_install():
    s = sack(pkg("perl-Net-Telnet", provides=[Dep("perl(Net::Telnet)", "EQ", ("0", "3.03", ""))]),
             pkg("coreutils", files=["/bin/ls"]))
    assert resolve(PackageSection(["perl(Net::Telnet)", "/bin/ls"], [], []), s, OURS) == []


def test_groups_core_always_base_by_default_by_id_or_name():
    s = sack(groups=[Group("clustering", ["Clustering"], {"mandatory": ["absent-member"]})])
    assert resolve(PackageSection([], ["clustering", "CLUSTERING"], []), s, OURS) == []  # members yum skips
    assert names(resolve(PackageSection([], ["nosuch"], []), s, OURS)) == [("group", "@nosuch")]
    bare = Sack([Repo("dvd", [pkg("bash")], [])])
    assert names(resolve(PackageSection([], [], []), bare, OURS)) == [("group", "@Core"), ("group", "@Base")]
    assert names(resolve(PackageSection([], [], [], add_base=False), bare, OURS)) == [("group", "@Core")]


def test_excluded_names_need_not_exist():
    assert resolve(PackageSection(["bash"], [], ["NetworkManager"]), sack(), OURS) == []


def test_dependencies_with_versions():
    uname = "2.6.32.23-170.dom0_an1.fc13.x86_64"
    km = pkg("drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64", "8.3.7", requires=[Dep("kernel-uname-r", "EQ", ("0", uname, ""))])
    stock = pkg("kernel", "2.6.33.3", "85.fc13", provides=[Dep("kernel-uname-r", "EQ", ("0", "2.6.33.3-85.fc13.x86_64", ""))])
    ours = pkg("kernel", "2.6.32.23", "170.dom0_an1.fc13", epoch="1",
               provides=[Dep("kernel-uname-r", "EQ", ("0", uname, ""))])
    section = PackageSection([km.name], [], [])
    missing = resolve(section, sack(km, stock), OURS)
    assert names(missing) == [("dependency", f"kernel-uname-r = {uname}")]
    assert "drbd-km-2.6.32.23_170" in missing[0].needed_by and "rpmspecs/kernel/kernel.spec" in missing[0].source
    assert resolve(section, sack(km, stock, ours), OURS) == []
    # an Epoch on our kernel: the kickstart's name-version-release still matches it
    assert resolve(PackageSection(["kernel-2.6.32.23-170.dom0_an1.fc13"], [], []), sack(stock, ours), OURS) == []


def test_rpmlib_and_unlisted_file_requires_are_not_reported():
    p = pkg("x", requires=[Dep("rpmlib(PayloadFilesHavePrefix)", "LE", ("0", "4.0", "1")), Dep("/usr/share/foo/bar")])
    assert resolve(PackageSection(["x"], [], []), sack(p), OURS) == []
    q = pkg("y", requires=[Dep("/usr/bin/perl")])
    assert names(resolve(PackageSection(["y"], [], []), sack(q), OURS)) == [("dependency", "/usr/bin/perl")]


def test_where_it_should_come_from():
    missing = resolve(PackageSection(["kernel-2.6.32.23-170.dom0_an1.fc13", "perl-Net-Telnet",
                                      "drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64"], [], []), sack(), OURS)
    src = {m.name: m.source for m in missing}
    assert "our package (rpmspecs/kernel/kernel.spec)" in src["kernel-2.6.32.23-170.dom0_an1.fc13"]
    assert "our package (rpmspecs/drbd-km/drbd-km.spec)" in src["drbd-km-2.6.32.23_170.dom0_an1.fc13.x86_64"]
    assert "Fedora 13 package" in src["perl-Net-Telnet"] and "BUILD/rpms" in src["perl-Net-Telnet"]


def test_kickstart_section_as_pykickstart_f13_reads_it():
    sec = kickstart_packages("cdrom\n%packages\n@core\n@base\ncman\n-NetworkManager\n%end\n")
    assert (sec.packages, sec.groups, sec.excluded, sec.seen) == (["cman"], ["core", "base"], ["NetworkManager"], True)
    assert kickstart_packages("cdrom\ntext\n").seen is False
    assert resolve(kickstart_packages("cdrom\ntext\n"), Sack([]), OURS) == []  # no %packages: nothing named


@pytest.mark.parametrize("a,b,want", [("2.6.33.3", "2.6.32.23", 1), ("1.0", "1.0a", -1), ("1.0a", "1.0.1", -1),
                                      ("170.dom0_an1.fc13", "170.dom0_an1.fc13", 0), ("10", "9", 1), ("1.a", "1.1", -1)])
def test_rpmvercmp(a, b, want):
    assert rpmvercmp(a, b) == want


def test_damaged_metadata_is_a_clear_error(tmp_path):
    from isobuild.errors import IsobuildError
    from isobuild.pkgresolve import dir_reader, read_repo

    (tmp_path / "repodata").mkdir()
    (tmp_path / "repodata/repomd.xml").write_text(
        '<repomd xmlns="http://linux.duke.edu/metadata/repo"><data type="primary">'
        '<location href="repodata/primary.xml.gz"/></data></repomd>')
    (tmp_path / "repodata/primary.xml.gz").write_bytes(b"not gzip")
    with pytest.raises(IsobuildError, match="the DVD: unreadable repodata"):
        read_repo(dir_reader(tmp_path), "the DVD")
    (tmp_path / "repodata/primary.xml.gz").unlink()
    with pytest.raises(IsobuildError, match="primary.xml.gz .* is missing"):
        read_repo(dir_reader(tmp_path), "the DVD")
