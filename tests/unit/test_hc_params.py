"""Checker parameters: keepalived's status_code forms, defaults, and clear errors."""

from __future__ import annotations

import pytest

from healthchecks import (
    DnsCheckParams,
    HttpGetParams,
    MiscCheckParams,
    SmtpCheckParams,
    TcpCheckParams,
    UrlSpec,
    parse_status_codes,
)


@pytest.mark.parametrize(
    ("value", "ranges"),
    [
        (200, ((200, 200),)),
        ("200-299", ((200, 299),)),
        ("200-299 400-499 503", ((200, 299), (400, 499), (503, 503))),
        ([200, "301-302"], ((200, 200), (301, 302))),
    ],
)
def test_status_code_forms(value: int | str | list[int | str], ranges: object) -> None:
    assert parse_status_codes(value) == ranges


@pytest.mark.parametrize("value", ["2xx", "299-200", 42, [], [True], "200-"])
def test_bad_status_codes(value: object) -> None:
    with pytest.raises(ValueError, match="status_code"):
        parse_status_codes(value)  # type: ignore[arg-type]


def test_url_defaults_and_matching() -> None:
    url = UrlSpec()
    assert url.status_ok(200) and url.status_ok(299) and not url.status_ok(301)
    assert UrlSpec(digest="9B3A0C85A887A256D6939DA88AABD8CD").digest == (
        "9b3a0c85a887a256d6939da88aabd8cd"
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TcpCheckParams("10.0.0.300", 80), "connect_ip"),
        (lambda: TcpCheckParams("10.0.0.1", 0), "connect_port"),
        (lambda: TcpCheckParams("10.0.0.1", 80, connect_timeout=0), "connect_timeout"),
        (lambda: TcpCheckParams("10.0.0.1", 80, bindto="eth0"), "bindto"),
        (lambda: HttpGetParams("::1", 80, urls=()), "url"),
        (lambda: HttpGetParams("::1", 80, http_protocol="2"), "http_protocol"),
        (lambda: UrlSpec(path="health"), "path"),
        (lambda: UrlSpec(digest="abc"), "digest"),
        (lambda: UrlSpec(regex="("), "regex"),
        (lambda: UrlSpec(regex_no_match=True), "regex_no_match"),
        (lambda: MiscCheckParams(""), "misc_path"),
        (lambda: MiscCheckParams("/bin/true 'unclosed"), "misc_path"),
        (lambda: MiscCheckParams("/bin/true", misc_timeout=-1), "misc_timeout"),
        (lambda: DnsCheckParams("127.0.0.1", type="BOGUS"), "type"),
        (lambda: DnsCheckParams("127.0.0.1", name="a..b"), "name"),
        (lambda: DnsCheckParams("127.0.0.1", name="x" * 64 + ".com"), "name"),
        (lambda: SmtpCheckParams("127.0.0.1", helo_name="two words"), "helo_name"),
    ],
)
def test_bad_parameters_are_clear_errors(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_misc_path_is_split_like_a_shell_without_running_one() -> None:
    p = MiscCheckParams("/usr/local/bin/probe --host '10.0.0.1 x' $HOME")
    assert p.argv == ("/usr/local/bin/probe", "--host", "10.0.0.1 x", "$HOME")


def test_dns_type_is_case_insensitive_and_defaults_to_soa() -> None:
    assert DnsCheckParams("127.0.0.1").type == "SOA"
    assert DnsCheckParams("127.0.0.1", type="aaaa").type == "AAAA"


def test_make_checker_picks_the_checker_and_misc_timeout_defaults_to_delay_loop() -> None:
    from healthchecks import Timing, make_checker

    assert make_checker(MiscCheckParams("/bin/true"), Timing(delay_loop=7)).timeout == 7
    assert make_checker(MiscCheckParams("/bin/true", misc_timeout=2)).timeout == 2
    kinds = {
        make_checker(p).kind
        for p in (
            TcpCheckParams("127.0.0.1", 80),
            HttpGetParams("127.0.0.1", 80),
            HttpGetParams("127.0.0.1", 443, tls=True),
            DnsCheckParams("127.0.0.1"),
            SmtpCheckParams("127.0.0.1"),
        )
    }
    assert kinds == {"TCP_CHECK", "HTTP_GET", "SSL_GET", "DNS_CHECK", "SMTP_CHECK"}
    with pytest.raises(TypeError, match="not checker parameters"):
        make_checker("TCP_CHECK")  # type: ignore[arg-type]
