"""The client's address, behind as many proxies as TRUSTED_PROXY_COUNT says and no more."""

import pytest
from django.test import RequestFactory

from payments.http import client_address


def request(remote: str = "203.0.113.9", forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_a_spoofed_forwarded_for_changes_nothing(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert client_address(request(forwarded="198.51.100.1, 198.51.100.2")) == "203.0.113.9"


def test_behind_one_proxy_the_rightmost_entry_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    # The client wrote 6.6.6.6 itself; the proxy appended the address it was connected from.
    assert client_address(request(remote="10.0.0.2", forwarded="6.6.6.6, 198.51.100.7")) == "198.51.100.7"


def test_behind_two_proxies_the_second_entry_from_the_right_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 2

    address = client_address(request(remote="10.0.0.3", forwarded="6.6.6.6, 198.51.100.7, 10.0.0.2"))

    assert address == "198.51.100.7"


@pytest.mark.parametrize("forwarded", [None, "", "198.51.100.7", "not-an-address, 10.0.0.2"])
def test_a_header_the_proxies_did_not_write_falls_back_to_the_peer(settings, forwarded):
    settings.TRUSTED_PROXY_COUNT = 2

    assert client_address(request(remote="10.0.0.3", forwarded=forwarded)) == "10.0.0.3"


def test_ipv6_clients_are_reported_in_canonical_form(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert client_address(request(remote="10.0.0.2", forwarded="2001:DB8:0:0::1")) == "2001:db8::1"
