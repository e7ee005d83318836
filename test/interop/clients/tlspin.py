"""A requests session that trusts exactly one server certificate.

avouch's generated TLS certificate is self-signed and not a CA (no
keyCertSign), so OpenSSL will not take it as a trust anchor through
requests' verify=<file>. The tests pin it instead: it is the only entry of
the trust store, and VERIFY_X509_PARTIAL_CHAIN lets OpenSSL accept a trusted
leaf. urllib3 still checks the host name (IP SANs included) itself.
"""

import ssl

import requests
import requests.adapters


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, cafile, **kwargs):
        self._cafile = cafile
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        ctx = ssl.create_default_context(cafile=self._cafile)
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.check_hostname = False  # urllib3 matches the host name itself
        kwargs["ssl_context"] = ctx
        return super().init_poolmanager(*args, **kwargs)


def pin(session, cafile):
    """Make session trust the certificate in cafile for https."""
    if cafile:
        session.mount("https://", _PinnedAdapter(cafile))
    return session
