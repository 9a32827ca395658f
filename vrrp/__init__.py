"""VRRP v2/v3 speaker: codec, pure state machine, and the kernel-facing glue."""
