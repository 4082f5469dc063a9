"""Reading a cluster definition into the model: load_definition().

The walker (checker.Checker.mapping) checks each mapping's keys, types and single-value rules from the
settings on the model's fields, and settings.fill() builds the plain dataclasses; one loader module per
part of the definition (loader_networks: cluster, networks, totem; loader_fence, loader_nodes,
loader_install, loader_storage, loader_xen, loader_vms) keeps what is specific to it: rules across keys
of one part, derived values. secretfile reads the secret files; rules across parts are in crossrules.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .checker import Checker
from .crossrules import cross_checks
from .errors import ProblemsError
from .loader_fence import load_fence_devices
from .loader_install import load_install
from .loader_networks import load_cluster, load_networks, load_totem
from .loader_nodes import load_nodes
from .loader_storage import load_storage
from .loader_vms import load_vms
from .loader_xen import load_xen
from .model import Cluster
from .secretfile import SecretReader
from .yamlsource import Lines, read_yaml


def load_definition(path: str | os.PathLike) -> Cluster:
    """Load, check completely, and return the frozen model. Raises ProblemsError listing every problem."""
    path = Path(path)
    raw = read_yaml(path)
    ck = Checker(path, Lines(raw))
    digest = hashlib.sha256(path.read_bytes())

    top = ck.mapping(raw, "", "", 1)
    if top is None:
        raise ProblemsError(f"{path}: invalid cluster definition", ck.problems)

    read_secret = SecretReader(ck, path)
    cluster = load_cluster(ck, top)
    networks = load_networks(ck, top)
    totem = load_totem(ck, top)
    devices = load_fence_devices(ck, top, read_secret)
    nodes = load_nodes(ck, top, cluster, networks)
    install = load_install(ck, top, read_secret)
    storage = load_storage(ck, top)
    xen = load_xen(ck, top)
    vms = load_vms(ck, top, cluster, read_secret.base_dir, read_secret.digests)

    cross_checks(ck, networks, nodes, devices, storage, xen, vms, install)

    if ck.problems:
        ordered = sorted(ck.problems, key=lambda p: p.line or 0)  # stable: same-line problems keep rule order
        raise ProblemsError(f"{path}: invalid cluster definition", ordered)

    for d in sorted(read_secret.digests):
        digest.update(d.encode())
    return Cluster(
        name=cluster["name"], config_version=cluster["config_version"], domain=cluster["domain"],
        timezone=cluster["timezone"], release=cluster["release"], networks=networks, totem=totem,
        nodes=tuple(nodes.values()), fence_devices=tuple(devices.values()), install=install, storage=storage,
        xen=xen, vms=tuple(vms.values()), source=path, digest=digest.hexdigest(), demo_secrets=read_secret.demo,
        warnings=tuple(str(w) for w in ck.warnings),
    )
