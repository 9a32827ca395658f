"""Asynchronous health checkers with keepalived's semantics, usable on their own."""
