"""tasks/netguard.py: which addresses webhooks may post to, the allow settings, and the
sentences that say why a URL is refused."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from tasks.netguard import AddressPolicy, UnsafeURL, check_url, forbidden_kind
from tasks.settings import ConfigError
from tests.services import make_settings


@pytest.mark.parametrize(("address", "kind"), [
    ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
    ("127.0.0.1", "a loopback address"), ("127.8.9.10", "a loopback address"),
    ("::1", "a loopback address"),
    ("169.254.169.254", "a link-local address"), ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"), ("ff02::1", "a multicast address"),
    ("10.1.2.3", "a private address"), ("172.16.0.1", "a private address"),
    ("192.168.1.1", "a private address"), ("fd12:3456::1", "a private address"),
    ("240.0.0.1", "a reserved address"),
    ("100.64.0.1", "not a public address"),  # carrier-grade NAT
    # IPv6 forms carrying an IPv4 address are judged by that address
    ("::ffff:127.0.0.1", "a loopback address"), ("::ffff:10.0.0.1", "a private address"),
    ("::ffff:169.254.169.254", "a link-local address"),
    ("2002:7f00:1::1", "a loopback address"),  # 6to4 of 127.0.0.1
    ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
    ("93.184.216.34", None), ("2606:4700:4700::1111", None), ("::ffff:93.184.216.34", None),
])
def test_forbidden_kinds(address: str, kind: str | None) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def test_literal_addresses_are_refused_with_a_sentence() -> None:
    with pytest.raises(UnsafeURL) as refused:
        check_url("http://127.0.0.1:8080/hook", AddressPolicy())
    assert str(refused.value) == \
        "Webhooks may only post to public addresses: 127.0.0.1 is a loopback address."
    with pytest.raises(UnsafeURL, match=r"::ffff:169.254.169.254 is a link-local address"):
        check_url("http://[::ffff:169.254.169.254]/latest/meta-data", AddressPolicy())


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    target = check_url("https://lms.example/hook", AddressPolicy(), public)
    assert (target.host, target.port, target.addresses) == ("lms.example", 443, ("93.184.216.34",))
    with pytest.raises(UnsafeURL) as refused:
        check_url("https://lms.example/hook", AddressPolicy(),
                  lambda host, port: ["93.184.216.34", "10.0.0.5"])
    assert str(refused.value) == ("Webhooks may only post to public addresses: lms.example "
                                  "resolves to 10.0.0.5, which is a private address.")


def test_unresolvable_hosts_are_refused() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(UnsafeURL) as refused:
        check_url("https://nowhere.invalid/", AddressPolicy(), nowhere)
    assert str(refused.value) == \
        "The url's host 'nowhere.invalid' could not be resolved (Name or service not known)."


def test_settings_allow_all_or_some_networks(tmp_path: Path) -> None:
    everything = AddressPolicy.from_settings(
        make_settings(tmp_path, "sqlite://", webhook_allow_private="true"))
    assert check_url("http://127.0.0.1:9/", everything).addresses == ("127.0.0.1",)
    some = AddressPolicy.from_settings(make_settings(
        tmp_path, "sqlite://", webhook_allowed_networks="10.20.0.0/16, fd00::/8"))
    assert check_url("http://10.20.3.4/", some).addresses == ("10.20.3.4",)
    assert check_url("http://[fd00::5]/", some).addresses == ("fd00::5",)
    with pytest.raises(UnsafeURL, match="10.21.0.1 is a private address"):
        check_url("http://10.21.0.1/", some)
    assert AddressPolicy.from_settings(make_settings(tmp_path, "sqlite://")) == AddressPolicy()


def test_a_bad_network_setting_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'10.0.0.0/33' is not a network"):
        make_settings(tmp_path, "sqlite://", webhook_allowed_networks="10.0.0.0/33")
