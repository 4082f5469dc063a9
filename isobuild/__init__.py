"""AN!Cluster build pipeline: one cluster definition in, kickstarts, configs, RPMs and an install DVD out."""

__version__ = "0.1.0"
