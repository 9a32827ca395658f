"""Network-namespace lab: namespaces, veths, a bridge, real keepalived peers and packet capture."""
