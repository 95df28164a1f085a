"""The ldap: table type, opened directly (tern map -q, tern check) against a
real slapd (remoteutil.Slapd, one per module): found, not found, several
values joined, result_format, the domain restriction, scope, bind, failover
from a dead server, ldapi://, filter injection, special_result_attribute
recursion, expansion_limit, and every failure a temporary one (exit 75),
never "not found"."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from remoteutil import (  # noqa: F401 (fixtures)
    LDAP_ROOTDN,
    LDAP_ROOTPW,
    HungLdap,
    Slapd,
    hung_ldap,
    start_remote,
)
from ternlib import TERN, free_port, require_binary

EX_TEMPFAIL = 75

DIRECTORY = """dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: uid=joe,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: joe
cn: Joe Doe
sn: Doe
mail: joe@example.test
mail: joe.doe@example.test

dn: ou=staff,ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: staff

dn: uid=ann,ou=staff,ou=people,dc=example,dc=test
objectClass: inetOrgPerson
uid: ann
cn: Ann Smith
sn: Smith
mail: ann@example.test

dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: cn=team,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: team
member: uid=joe,ou=people,dc=example,dc=test
member: uid=ann,ou=staff,ou=people,dc=example,dc=test
"""


@pytest.fixture(scope="module")
def slapd(mres):
    require_binary()
    return start_remote(mres, Slapd(mres.base, ldif=DIRECTORY))


@pytest.fixture
def cf(tmp_path, slapd):
    """cf(server_host=..., **settings) -> the path of a new ldap .cf (0640)."""
    count = [0]

    def make(**settings):
        settings.setdefault("server_host", slapd.url)
        settings.setdefault("search_base", "dc=example,dc=test")
        settings.setdefault("query_filter", "(mail=%s)")
        settings.setdefault("result_attribute", "uid")
        settings.setdefault("bind", "no")
        settings.setdefault("timeout", "5")
        count[0] += 1
        path = tmp_path / f"ldap{count[0]}.cf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        os.chmod(path, 0o640)
        return path

    return make


def query(path, key):
    """tern map -q KEY ldap:PATH -> (exit code, stdout line, stderr)."""
    p = subprocess.run([str(TERN), "map", "-q", key, f"ldap:{path}"], capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout.strip(), p.stderr


def test_found_folded_and_not_found(cf):
    path = cf()
    assert query(path, "joe@example.test")[:2] == (0, "joe")
    assert query(path, "Joe.Doe@Example.TEST")[:2] == (0, "joe")
    assert query(path, "nobody@example.test")[:2] == (1, "")


def test_several_values_are_joined_with_commas(cf):
    rc, out, _ = query(cf(result_attribute="mail"), "joe@example.test")
    assert rc == 0
    assert sorted(out.split(",")) == ["joe.doe@example.test", "joe@example.test"]


def test_result_format_and_several_attributes(cf):
    path = cf(result_attribute="uid, sn", result_format="%s@%D.relay")
    rc, out, _ = query(path, "joe@example.test")
    assert rc == 0
    assert sorted(out.split(",")) == ["Doe@example.test.relay", "joe@example.test.relay"]


def test_domain_restriction_skips_other_keys(cf):
    assert query(cf(domain="other.test"), "joe@example.test")[:2] == (1, "")
    assert query(cf(domain="other.test, example.test"), "joe@example.test")[:2] == (0, "joe")
    assert query(cf(domain="!example.test, example.test"), "joe@example.test")[0] == 1


def test_scope_and_expanded_base(cf):
    base = "ou=people,dc=example,dc=test"
    assert query(cf(search_base=base, scope="one"), "ann@example.test")[0] == 1
    assert query(cf(search_base=base, scope="sub"), "ann@example.test")[:2] == (0, "ann")
    assert query(cf(search_base=base, scope="one"), "joe@example.test")[:2] == (0, "joe")
    by_base = cf(search_base="uid=%u,ou=people,dc=example,dc=test", scope="base",
                 query_filter="(objectClass=inetOrgPerson)")
    assert query(by_base, "joe@example.test")[:2] == (0, "joe")
    assert query(by_base, "nobody@example.test")[:2] == (1, "")
    assert query(by_base, "joe,ou=staff@example.test")[:2] == (1, "")


def test_bind_with_password_and_wrong_password_is_tempfail(cf):
    good = cf(bind="yes", bind_dn=LDAP_ROOTDN, bind_pw=LDAP_ROOTPW)
    assert query(good, "joe@example.test") == (0, "joe", "")
    bad = cf(bind="yes", bind_dn=LDAP_ROOTDN, bind_pw="wrong-secret-x")
    rc, out, err = query(bad, "joe@example.test")
    assert (rc, out) == (EX_TEMPFAIL, "")
    assert "Invalid credentials" in err and "wrong-secret-x" not in err, err


def test_optional_table_without_its_file_is_empty(tmp_path):
    missing = tmp_path / "missing.cf"
    p = subprocess.run([str(TERN), "map", "-q", "joe@example.test", f"optional:ldap:{missing}"],
                       capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout) == (1, ""), p.stderr
    assert query(missing, "joe@example.test")[0] == EX_TEMPFAIL


def test_password_file_readable_by_others_is_refused(cf):
    path = cf(bind="yes", bind_dn=LDAP_ROOTDN, bind_pw=LDAP_ROOTPW)
    os.chmod(path, 0o644)
    rc, _, err = query(path, "joe@example.test")
    assert rc == EX_TEMPFAIL and "chmod" in err and LDAP_ROOTPW not in err, err


def test_failover_from_a_dead_server(cf, slapd):
    dead, dead2 = (f"ldap://127.0.0.1:{free_port()}" for _ in range(2))
    assert query(cf(server_host=f"{dead} {slapd.url}"), "joe@example.test")[:2] == (0, "joe")
    rc, out, err = query(cf(server_host=f"{dead} {dead2} {slapd.url}"), "joe@example.test")
    assert (rc, out) == (0, "joe")
    assert f"{dead}/: cannot connect" in err and f"using {slapd.url}/" in err, err


def test_ldapi(cf, slapd):
    assert query(cf(server_host=slapd.ldapi_url), "joe@example.test")[:2] == (0, "joe")


@pytest.mark.parametrize("key", ["*", "*)(uid=*", "*@example.test", "joe@example.test)(|(uid=*"])
def test_filter_injection_finds_nothing(cf, key):
    assert query(cf(), key)[:2] == (1, "")


def test_special_result_attribute_follows_members(cf):
    path = cf(search_base="ou=groups,dc=example,dc=test", query_filter="(cn=%u)",
              result_attribute="mail", special_result_attribute="member")
    rc, out, _ = query(path, "team@example.test")
    assert rc == 0
    assert sorted(out.split(",")) == ["ann@example.test", "joe.doe@example.test",
                                      "joe@example.test"]
    limited = cf(search_base="ou=groups,dc=example,dc=test", query_filter="(cn=%u)",
                 result_attribute="mail", special_result_attribute="member", recursion_limit="1")
    assert query(limited, "team@example.test")[0] == EX_TEMPFAIL


def test_leaf_result_attribute_only_from_leaf_entries(cf):
    path = cf(search_base="ou=groups,dc=example,dc=test", query_filter="(cn=%u)",
              result_attribute="mail", leaf_result_attribute="uid",
              special_result_attribute="member")
    rc, out, _ = query(path, "team@example.test")
    assert rc == 0
    assert sorted(out.split(",")) == ["ann", "ann@example.test", "joe", "joe.doe@example.test",
                                      "joe@example.test"]


def test_expansion_and_size_limits_are_tempfail(cf):
    assert query(cf(result_attribute="mail", expansion_limit="1"), "joe@example.test")[0] == \
        EX_TEMPFAIL
    assert query(cf(result_attribute="mail", expansion_limit="2"), "joe@example.test")[0] == 0
    many = cf(query_filter="(&(objectClass=inetOrgPerson)(mail=*%d))", size_limit="1")
    assert query(many, "x@example.test")[0] == EX_TEMPFAIL


def test_no_server_is_tempfail_not_notfound(cf):
    rc, out, err = query(cf(server_host=f"ldap://127.0.0.1:{free_port()}"), "joe@example.test")
    assert (rc, out) == (EX_TEMPFAIL, "")
    assert "ldap:" in err and "lookup failed" in err, err


def test_hung_server_times_out(cf, hung_ldap):
    t0 = time.monotonic()
    rc, _, err = query(cf(server_host=hung_ldap.url, timeout="1"), "joe@example.test")
    assert rc == EX_TEMPFAIL, err
    assert time.monotonic() - t0 < 8


def test_stopped_server_is_tempfail_then_answers_again(res, cf):
    own = start_remote(res, Slapd(res.base, ldif=DIRECTORY, ldapi=False))
    path = cf(server_host=own.url)
    assert query(path, "joe@example.test")[:2] == (0, "joe")
    own.stop()
    assert query(path, "joe@example.test")[0] == EX_TEMPFAIL
    own.start()
    assert query(path, "joe@example.test")[:2] == (0, "joe")


def test_check_queries_each_remote_table_once(res, cf):
    good = cf()
    dead = cf(server_host=f"ldap://127.0.0.1:{free_port()}")
    tern = res.tern(start=False, virtual_alias_maps=f"ldap:{good} ldap:{dead}",
                    smtpd_recipient_restrictions=f"check_recipient_access ldap:{dead}, "
                    "permit_mynetworks, reject_unauth_destination")
    r = tern.tern("check")
    assert r.returncode == 1, r
    assert r.stdout.count(f"ldap:{dead}: cannot be queried") == 1, r.stdout
    assert f"ldap:{good}:" not in r.stdout, r.stdout


def test_check_accepts_a_working_remote_table(res, cf):
    tern = res.tern(start=False, virtual_alias_maps=f"ldap:{cf()}")
    r = tern.tern("check")
    assert r.returncode == 0, r.stdout + r.stderr


class TlsSlapd(Slapd):
    """Slapd that offers StartTLS with a certificate for 127.0.0.1 from the test CA."""

    def __init__(self, base, cert, key, **kw):
        super().__init__(base, **kw)
        self.cert, self.key = cert, key

    def prepare(self):
        if self._prepared:
            return
        super().prepare()
        tls = f"TLSCertificateFile {self.cert}\nTLSCertificateKeyFile {self.key}\n"
        self.conf.write_text(tls + self.conf.read_text())  # global: before "database"


def make_ca(d: Path, name: str) -> Path:
    """d/name.pem and name.key: a P-256 CA (RSA keys take seconds to make)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key", "-out",
                    f"{name}.pem", "-days", "2", "-subj", f"/CN={name}"],
                   cwd=d, check=True, capture_output=True)
    return d / f"{name}.pem"


@pytest.fixture(scope="module")
def tls_slapd(mres):
    """(slapd with StartTLS, its CA file, a CA that did not sign it)"""
    d = mres.base / "ldap-pki"
    d.mkdir()
    ca, rogue = make_ca(d, "ca"), make_ca(d, "rogue")
    (d / "ext").write_text("subjectAltName = IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", "ldap.key", "-out", "ldap.csr", "-subj", "/CN=127.0.0.1"],
                   cwd=d, check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", "ldap.csr", "-CA", "ca.pem", "-CAkey",
                    "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out",
                    "ldap.pem"], cwd=d, check=True, capture_output=True)
    server = start_remote(mres, TlsSlapd(mres.base, d / "ldap.pem", d / "ldap.key",
                                         ldif=DIRECTORY, ldapi=False))
    return server, ca, rogue


def test_start_tls_verifies_the_server(cf, tls_slapd):
    server, ca, rogue = tls_slapd
    tls = dict(server_host=server.url, start_tls="yes", tls_require_cert="yes")
    good = cf(tls_ca_cert_file=ca, **tls)
    assert query(good, "joe@example.test") == (0, "joe", "")
    rogue = cf(tls_ca_cert_file=rogue, **tls)
    rc, _, err = query(rogue, "joe@example.test")
    assert rc == EX_TEMPFAIL and "cannot start TLS" in err, err
    lax = cf(tls_ca_cert_file=rogue, **{**tls, "tls_require_cert": "no"})
    assert query(lax, "joe@example.test")[:2] == (0, "joe")


def test_start_tls_refused_by_a_plain_server_is_tempfail(cf):
    rc, _, err = query(cf(start_tls="yes"), "joe@example.test")
    assert rc == EX_TEMPFAIL and "cannot start TLS" in err, err


def test_trace_shows_the_remote_lookups(res, cf):
    """tern trace names the ldap: table, the key and its answer."""
    path = cf(result_attribute="mail", query_filter="(uid=%u)")
    tern = res.tern(start=False, virtual_alias_domains="virt.test",
                    virtual_alias_maps=f"ldap:{path}")
    r = tern.tern("trace", "--no-dns", "joe@virt.test")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert f"ldap:{path}" in out, out
    assert "joe@virt.test" in out and "joe@example.test" in out, out
