"""IPVS adapter: table model, reconcile, backends (netlink, nftables, memory) and listing."""
