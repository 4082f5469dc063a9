"""vms: each VM, its domU config file, its install and its MAC."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from .checker import Checker, suggest
from .f13virt import VIRTINST_OS_VARIANTS
from .model import GUEST_BOOT_MIB, GUEST_ROOT_MIN_MIB, Vm, VmInstall
from .settings import fill
from .values import INSTALL_URL_RE, derived_mac, domu_config_problem, parse_size_mib


def load_vms(ck: Checker, top, cluster, base_dir: Path, digests: list[str]) -> dict[str, Vm]:
    """The VMs that loaded, by their path (vms[i])."""
    vms: dict[str, Vm] = {}
    seq = top.get("vms", []) or []
    names: dict[str, int] = {}
    for i, path, item, m in ck.items(seq, "vms", "vm"):
        ck.seen.vms.append((path, m))
        name = m.get("name", "")
        if name:
            if name in names:
                ck.at(f"{path}.name", f"{name!r} is already used by vms[{names[name]}]")
            names.setdefault(name, i)
        sizes = {key: parse_size_mib(m[key]) for key in ("memory", "disk") if key in m}
        cfile, config = _vm_config(ck, m, path, base_dir, digests)
        extra = _vm_extras(ck, item, m, path)
        if all(k in m for k in ("name", "memory", "vcpus", "disk", "bridge", "prefer")) and all(sizes.values()) \
                and extra is not None:
            vm = fill(Vm, m, memory_mib=sizes["memory"], disk_mib=sizes["disk"], config_file=cfile, config=config,
                      **extra)
            if vm.disk_mib < vm.min_disk_mib:
                ck.at(f"{path}.disk",
                      f"{vm.disk} is too small for the guest: its kickstart lays out /boot "
                      f"{GUEST_BOOT_MIB} MiB, swap {vm.guest_swap_mib} MiB and / at least {GUEST_ROOT_MIN_MIB} MiB "
                      f"({vm.min_disk_mib} MiB)",
                      f"make it at least {vm.min_disk_mib}M")
            vms[path] = vm
    _assign_macs(ck, vms, cluster["name"])
    return vms


def _vm_config(ck: Checker, m: dict, path: str, base_dir: Path,
               digests: list[str]) -> tuple[Path | None, str | None]:
    """vms[].config_file: the xm config rgmanager's vm.sh starts (`xm create --path=<mount>/domU_config
    <name>`). Without one the VM is defined but not started (autostart="0")."""
    if "config_file" not in m:
        return None, None
    rel, kpath = m["config_file"], f"{path}.config_file"
    line = ck.line(kpath)
    full = Path(rel) if Path(rel).is_absolute() else base_dir / rel
    try:
        text = full.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        ck.add(kpath, f"cannot read domU config {rel} ({type(err).__name__}, looked at {full})", line,
               "relative paths are relative to the definition file")
        return Path(rel), None
    reason = domu_config_problem(text, m.get("name", ""))
    if reason:
        ck.add(kpath, f"{rel}: {reason}", line, "an xm config: Python assignments such as name = \"vm01\"")
        return Path(rel), None
    digests.append(hashlib.sha256(text.encode()).hexdigest())
    return Path(rel), text


def _vm_extras(ck: Checker, item, m: dict, path: str) -> dict | None:
    """mac, cpuset, os_variant and install of one VM (None when one of them is bad)."""
    ok = not {"mac", "cpuset"} & m.bad
    mac = str(m.get("mac", "")).lower()
    cpuset = str(m["cpuset"]) if "cpuset" in m else None
    variant = m.get("os_variant")
    known = [v for vs in VIRTINST_OS_VARIANTS.values() for v in vs]
    if variant is not None and variant not in known:
        ck.at(f"{path}.os_variant",
              f"{variant!r} is not an --os-variant of Fedora 13's virt-install "
              "(python-virtinst 0.500.3)",
              suggest(variant, known, "variants are"))
        ok = False
    install = _vm_install(ck, item, path)
    if install is False:
        return None
    return {"mac": mac, "mac_derived": "mac" not in m, "cpuset": cpuset, "os_variant": variant,
            "install": install} if ok else None


def _vm_install(ck: Checker, item, path: str) -> VmInstall | None | bool:
    """vms[].install; None when absent (the VM is provisioned by hand), False when bad."""
    if "install" not in item:
        return None
    node = item["install"]
    m = ck.mapping(node, f"{path}.install", "vm_install", ck.line(f"{path}.install"))
    if m is None or "method" not in m:
        return False
    ipath = f"{path}.install"
    method = m["method"]
    allowed = {"pv": ("location", "kickstart", "kickstart_url"), "hvm": ("iso",)}
    if method not in allowed:
        ck.at(f"{ipath}.method",
              f"{method!r} is not pv or hvm",
              "pv: virt-install --paravirt from an install tree URL; hvm: an xm config booting an ISO")
        return False
    bad = False
    for key in sorted(set(m) - {"method"} - set(allowed[method])):
        ck.at(f"{ipath}.{key}", f"does not apply to method {method}")
        bad = True
    need = "location" if method == "pv" else "iso"
    if need not in m:
        ck.add(f"{ipath}.{need}", f"method {method} needs {need}", ck.line(ipath))
        return False
    for key in ("location", "kickstart_url"):
        if key in m and not INSTALL_URL_RE.match(m[key]):
            ck.at(f"{ipath}.{key}",
                  f"{m[key]!r} is not an http://, ftp:// or nfs: URL (virt-install 0.500.3 takes no other)",
                  "virt-install --location takes http://host/path, ftp://host/path or nfs:host:/path")
            bad = True
    if "kickstart_url" in m and not m.get("kickstart"):
        ck.at(f"{ipath}.kickstart_url",
              "set without kickstart: true",
              "set kickstart: true so the pipeline renders the kickstart to publish there")
        bad = True
    if method == "hvm":
        mount = ck.seen.gfs2_mount
        iso = m["iso"]
        if not mount or not iso.startswith(mount + "/") or ".." in iso.split("/") or any(c in iso for c in "',\" \n"):
            ck.at(f"{ipath}.iso",
                  f"{iso!r} is not a file on the shared GFS2 mount {mount or '(unset)'}",
                  f"put the ISO on the shared filesystem, e.g. {mount}/iso/<name>.iso, "
                  "so both nodes can boot the VM")
            bad = True
    if bad:
        return False
    return fill(VmInstall, m)


def _assign_macs(ck: Checker, vms: dict[str, Vm], cname: str) -> None:
    """Explicit MACs must be unique; derived ones skip every MAC already taken (so never collide)."""
    taken: dict[str, str] = {}
    for mac, path in ck.seen.node_macs:  # the nodes' own NICs (nodes[].mac)
        taken.setdefault(mac, path)
    for path, vm in vms.items():
        if vm.mac_derived:
            continue
        if vm.mac in taken:
            ck.at(f"{path}.mac",
                  f"{vm.mac} is already used by {taken[vm.mac]}",
                  "every VM needs its own MAC (leave mac out for a derived one)")
        taken.setdefault(vm.mac, f"{path} ({vm.name})")
    for path, vm in vms.items():
        if not vm.mac_derived:
            continue
        attempt, mac = 0, derived_mac(cname, vm.name)
        while mac in taken:
            attempt += 1
            mac = derived_mac(cname, vm.name, attempt)
        taken[mac] = vm.name
        vms[path] = dataclasses.replace(vm, mac=mac)
