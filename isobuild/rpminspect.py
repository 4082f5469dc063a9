"""What is inside our RPMs (read with rpmfile): rpm 4.8 compatibility, identity, drbd-km's kernel,
and what differs between two builds of one package.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import IsobuildError

# rpmlib() features rpm 4.8 provides (rpm-4.8.0 lib/rpmds.c rpmlibProvides).
RPM48_RPMLIB = {
    "rpmlib(VersionedDependencies)", "rpmlib(CompressedFileNames)", "rpmlib(PayloadIsBzip2)",
    "rpmlib(PayloadIsXz)", "rpmlib(PayloadIsLzma)", "rpmlib(PayloadFilesHavePrefix)",
    "rpmlib(ExplicitPackageProvide)", "rpmlib(HeaderLoadSortsTags)", "rpmlib(ScriptletInterpreterArgs)",
    "rpmlib(PartialHardlinkSets)", "rpmlib(ConcurrentAccess)", "rpmlib(BuiltinLuaScripts)",
    "rpmlib(FileDigests)", "rpmlib(FileCaps)",
}
RPM48_COMPRESSORS = {"gzip", "bzip2", "xz", "lzma"}
RPM48_DIGESTS = {1, 2, 8, 9, 10}  # md5 sha1 sha256 sha384 sha512


def rpm48_problems(path: Path) -> list[str]:
    """Reasons rpm 4.8 (Fedora 13) could not install `path`; empty when it can."""
    import rpmfile

    problems = []
    with rpmfile.open(str(path)) as rpm:
        h = rpm.headers
    comp = _s(h.get("archive_compression")) or "gzip"
    if comp not in RPM48_COMPRESSORS:
        problems.append(f"payload compressor {comp} (rpm 4.8 reads gzip, bzip2, xz, lzma)")
    algo = h.get("filedigestalgo")
    if algo is not None and int(algo) not in RPM48_DIGESTS:
        problems.append(f"file digest algorithm {algo}")
    for dep in _list(h.get("requirename")):
        if dep.startswith("rpmlib(") and dep not in RPM48_RPMLIB:
            problems.append(f"requires {dep}, unknown to rpm 4.8")
        if dep.startswith("("):
            problems.append(f"rich dependency {dep}")
    return problems


def _s(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [_s(x) for x in v]
    return [_s(v)]



@dataclass
class RpmInfo:
    path: Path
    nevra: str
    name: str
    arch: str
    payload_compressor: str
    buildtime: int
    buildhost: str
    requires: list[str]
    provides: list[str]
    files: list[str]
    is_source: bool


_FLAG_OPS = {2: "<", 4: ">", 8: "=", 10: "<=", 12: ">="}


def _deps(h: dict, name_key: str, flags_key: str, ver_key: str) -> list[str]:
    names = _list(h.get(name_key))
    flags = h.get(flags_key) or []
    if not isinstance(flags, (list, tuple)):
        flags = [flags]
    vers = _list(h.get(ver_key))
    out = []
    for i, n in enumerate(names):
        v = vers[i] if i < len(vers) else ""
        op = _FLAG_OPS.get(int(flags[i]) & 0x0E if i < len(flags) else 0, "")
        out.append(f"{n} {op} {v}" if v and op else n)
    return out


def rpm_info(path: Path) -> RpmInfo:
    import rpmfile

    try:
        with rpmfile.open(str(path)) as rpm:
            h = rpm.headers
    except Exception as err:  # rpmfile raises plain errors on garbage
        raise IsobuildError(f"cannot read {path} as an RPM: {err}") from None
    name, ver, rel = _s(h.get("name")), _s(h.get("version")), _s(h.get("release"))
    epoch = h.get("epoch")
    is_source = not h.get("sourcerpm")
    arch = "src" if is_source else _s(h.get("arch"))
    evr = f"{epoch}:{ver}-{rel}" if epoch not in (None, [], 0) else f"{ver}-{rel}"
    dirs = _list(h.get("dirnames"))
    idx = h.get("dirindexes") or []
    if not isinstance(idx, (list, tuple)):
        idx = [idx]
    files = [dirs[i] + b for i, b in zip(idx, _list(h.get("basenames")))]
    return RpmInfo(
        path=Path(path), nevra=f"{name}-{evr}.{arch}", name=name, arch=arch,
        payload_compressor=_s(h.get("archive_compression")) or "gzip",
        buildtime=int(h.get("buildtime") or 0), buildhost=_s(h.get("buildhost")),
        requires=_deps(h, "requirename", "requireflags", "requireversion"),
        provides=_deps(h, "provides", "provideflags", "provideversion"),
        files=sorted(files), is_source=is_source,
    )


def check_drbd_km(info: RpmInfo) -> list[str]:
    """A drbd-km package must be named for, install into, and require exactly one kernel."""
    m = re.fullmatch(r"drbd-km-(.+)", info.name)
    if not m:
        return []
    problems = []
    kreqs = [r for r in info.requires if r.startswith("kernel-uname-r")]
    kernels = {r.split(" = ", 1)[1] for r in kreqs if " = " in r}
    if len(kernels) != 1 or len(kreqs) != 1:
        problems.append(f"{info.nevra}: must require exactly one kernel (kernel-uname-r = ...), has {kreqs or 'none'}")
        return problems
    (kver,) = kernels
    if m.group(1) != kver.replace("-", "_"):
        problems.append(f"{info.nevra}: name says kernel {m.group(1)} but it requires {kver}")
    moddirs = {f.split("/")[3] for f in info.files if f.startswith("/lib/modules/") and f.count("/") > 3}
    if moddirs != {kver}:
        problems.append(f"{info.nevra}: modules installed for {sorted(moddirs) or 'no kernel'}, expected {kver}")
    return problems


def _payload_digest(path: Path) -> tuple[str, dict[str, str]]:
    """(sha256 of the compressed payload, {file: sha256 of its content}) using rpmfile."""
    import hashlib

    import rpmfile

    files = {}
    with rpmfile.open(str(path)) as rpm:
        offset = rpm.data_offset
        for member in rpm.getmembers():
            fh = rpm.extractfile(member)
            files[member.name] = hashlib.sha256(fh.read() if fh else b"").hexdigest()
    with open(path, "rb") as fh:
        fh.seek(offset)
        raw = hashlib.sha256(fh.read()).hexdigest()
    return raw, files


def compare_rpms(a: Path, b: Path) -> list[str]:
    """What differs between two builds of one package: header fields by name, then payload files."""
    import rpmfile

    with rpmfile.open(str(a)) as ra, rpmfile.open(str(b)) as rb:
        ha, hb = ra.headers, rb.headers
    diffs = []
    for key in sorted(set(ha) | set(hb), key=str):
        va, vb = ha.get(key), hb.get(key)
        if va != vb:
            short = lambda v: (repr(v)[:60] + "...") if len(repr(v)) > 63 else repr(v)  # noqa: E731
            diffs.append(f"header {key}: {short(va)} != {short(vb)}")
    pa, fa = _payload_digest(a)
    pb, fb = _payload_digest(b)
    changed_files = sorted(n for n in set(fa) | set(fb) if fa.get(n) != fb.get(n))
    if changed_files:
        diffs.append("payload files differ: " + ", ".join(changed_files))
    elif pa != pb:
        diffs.append("payload archive differs (same file contents: cpio metadata or compression)")
    return diffs


@dataclass
class VerifyReport:
    identical: list[str]
    different: dict[str, list[str]]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.different and not self.missing


def compare_dirs(first: Path, second: Path) -> VerifyReport:
    names_a = {p.name for p in Path(first).glob("*.rpm")}
    names_b = {p.name for p in Path(second).glob("*.rpm")}
    report = VerifyReport([], {}, sorted(names_a ^ names_b))
    for name in sorted(names_a & names_b):
        diffs = compare_rpms(Path(first) / name, Path(second) / name)
        if diffs:
            report.different[name] = diffs
        else:
            report.identical.append(name)
    return report



def rpm_files(where: Path) -> list[Path]:
    where = Path(where)
    if where.is_file():
        return [where]
    if not where.is_dir():
        raise IsobuildError(f"no such RPM file or directory: {where}", hint="run `invoke rpms` first")
    return sorted(where.glob("*.rpm"))
