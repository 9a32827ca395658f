"""keepalived.conf import in parts; `hacluster.config.keepalived_import` is its public entry."""
