"""hacluster: VRRP, health checks and an IPVS adapter for load-balancer directors."""

__version__ = "0.1.0"
