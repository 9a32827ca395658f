"""keepalived keywords known but not carried over: unsupported, or without effect here."""

from __future__ import annotations

# Keywords keepalived knows that have no counterpart here: noted as "not supported"
# rather than "unknown keyword", so a reader can tell a typo from a missing feature.
_KNOWN_UNSUPPORTED = frozenset(
    """
    enable_snmp_vrrp
    enable_snmp_checker enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_traps
    snmp_socket enable_dbus dbus_service_name vrrp_nftables
    vrrp_priority checker_priority bfd_priority
    vrrp_no_swap checker_no_swap bfd_no_swap vrrp_rt_priority checker_rt_priority
    bfd_rt_priority vrrp_rlimit_rttime checker_rlimit_rttime bfd_rlimit_rttime
    default_interface dynamic_interfaces
    vrrp_garp_extra_if
    vrrp_netlink_cmd_rcv_bufs vrrp_netlink_monitor_rcv_bufs vrrp_rx_bufs_policy
    vrrp_rx_bufs_multiplier vrrp_startup_delay vrrp_process_name checker_process_name
    bfd_process_name vrrp_cpu_affinity checker_cpu_affinity bfd_cpu_affinity
    checker_log_all_failures vmac_prefix vmac_addr_prefix
    linkbeat_use_polling linkbeat_interfaces net_namespace net_namespace_ipvs
    namespace_with_ipsets instance startup_script startup_script_timeout shutdown_script
    shutdown_script_timeout max_auto_priority min_auto_priority_delay umask
    random_seed nftables_ipvs
    nftables_ipvs_priority nftables_ipvs_start_fwmark local_name rs_init_notifies
    no_checker_emails reload_time_file reload_repeat reload_file reload_check_config
    config_save_dir tmp_config_directory disable_local_igmp
    process_monitor_rcv_bufs process_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
    lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force vrrp_netlink_cmd_rcv_bufs_force
    vrrp_netlink_monitor_rcv_bufs_force include_check data_use_instance vrf
    use_vmac_addr use_ipvlan track_src_ip
    unicast_fault_no_peer old_unicast_checksum garp_extra_if garp_extra_if_vmac
    promote_secondaries debug notify_master_rx_lower_pri
    notify_deleted kernel_rx_buf_size track_bfd
    global_tracking sync_group_tracking_weight persistence_granularity persistence_engine
    flag-1 flag-2 flag-3 sh-port sh-fallback mh-port mh-fallback snmp_name regex_options
    regex_stack regex_min_offset regex_max_offset
    garp_group bfd_instance SSL interface_up_down_delays
    track_file_check
    """.split()  # noqa: SIM905 - a word list reads better than 150 quoted strings
)


# Keywords that only tune keepalived's own processes (scheduling priority, memory
# locking, CPU affinity, process names, netlink buffer sizes): they change nothing in
# what the cluster does, so leaving them out changes no behaviour. hacluster has its
# own process model.
_NO_EFFECT = frozenset(
    """
    vrrp_priority checker_priority bfd_priority vrrp_no_swap checker_no_swap bfd_no_swap
    vrrp_rt_priority checker_rt_priority bfd_rt_priority vrrp_rlimit_rttime
    checker_rlimit_rttime bfd_rlimit_rttime vrrp_cpu_affinity checker_cpu_affinity
    bfd_cpu_affinity vrrp_process_name checker_process_name bfd_process_name
    max_auto_priority min_auto_priority_delay vrrp_netlink_cmd_rcv_bufs
    vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs
    vrrp_netlink_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs
    lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs
    lvs_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs
    process_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier
    kernel_rx_buf_size
    """.split()  # noqa: SIM905 - a word list reads better than quoted strings
)
