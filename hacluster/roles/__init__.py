"""Process roles of the daemon: each runs in a process of its own under the supervisor."""
