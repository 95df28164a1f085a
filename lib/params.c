/*
 * params - the one parameter table (DESIGN §5).
 *
 * Every parameter tern knows is declared here, once: name, type, default and
 * a one-line help.  The config parser rejects any name not in this table;
 * `tern conf -d` and docs/tern.conf.5 are generated from it.  Keep it sorted
 * by area, then by name.
 */
#include "config.h"
#include "tern_build.h"

const struct param_def param_table[] = {
    /* identity */
    {"myhostname", PARAM_STR, "", "this host's fully qualified name (default: from the system)"},
    {"mail_name", PARAM_STR, "tern",
     "the mail system's name, for $mail_name in smtpd_banner and other texts"},
    {"mail_version", PARAM_STR, TERN_VERSION,
     "the version of the installed programs, for $mail_version in smtpd_banner (OPS-05); "
     "the default banner does not show it"},
    {"mydomain", PARAM_STR, "", "this host's domain (default: myhostname without its first label)"},
    {"myorigin", PARAM_STR, "$myhostname", "domain appended to unqualified sender addresses"},
    {"mydestination", PARAM_LIST, "$myhostname, localhost.$mydomain, localhost",
     "domains delivered locally"},
    {"mynetworks", PARAM_LIST, "127.0.0.0/8 [::1]/128",
     "client networks allowed to relay to any destination"},
    {"relayhost", PARAM_STR, "", "next hop for all non-local mail: host, [host], [host]:port"},

    /* routing and address rewriting (docs/routing.md) */
    {"relay_domains", PARAM_LIST, "",
     "domains accepted from anyone and relayed (backup MX, an outside relay's inside domains; "
     "sendmail's relay-domains); network items are client networks allowed to relay"},
    {"parent_domain_matches_subdomains", PARAM_LIST, "relay_domains",
     "lists whose names also match their subdomains (empty: exact names, sendmail's "
     "relay_hosts_only)"},
    {"transport_maps", PARAM_LIST, "",
     "routes by address or domain, \"transport:nexthop\" (sendmail's mailertable)"},
    {"default_transport", PARAM_STR, "smtp", "transport for mail to other domains"},
    {"relay_transport", PARAM_STR, "relay", "transport for mail to relay_domains"},
    {"local_transport", PARAM_STR, "local",
     "transport for mydestination; smtp:[hub] is sendmail's MAIL_HUB, error:TEXT refuses "
     "local mail"},
    {"virtual_alias_maps", PARAM_LIST, "",
     "recipient address rewriting, one to many (sendmail's virtusertable)"},
    {"virtual_alias_domains", PARAM_LIST, "$virtual_alias_maps",
     "domains whose addresses must all be in virtual_alias_maps (tables: the domains of their "
     "keys)"},
    {"canonical_maps", PARAM_LIST, "",
     "sender and recipient address rewriting (@old.domain @new.domain is sendmail's "
     "domaintable)"},
    {"sender_canonical_maps", PARAM_LIST, "", "sender address rewriting, before canonical_maps"},
    {"recipient_canonical_maps", PARAM_LIST, "",
     "recipient address rewriting, before canonical_maps"},
    {"canonical_classes", PARAM_LIST,
     "envelope_sender, envelope_recipient, header_sender, header_recipient",
     "addresses canonical_maps rewrites"},
    {"masquerade_domains", PARAM_LIST, "",
     "domains that hide their subdomains: user@host.example.com becomes user@example.com "
     "(!name excludes; sendmail's MASQUERADE_AS)"},
    {"masquerade_classes", PARAM_LIST, "envelope_sender, header_sender, header_recipient",
     "addresses masquerading rewrites (never the envelope recipient)"},
    {"masquerade_exceptions", PARAM_LIST, "",
     "local parts never masqueraded (sendmail's EXPOSED_USER)"},
    {"local_header_rewrite_clients", PARAM_LIST, "permit_mynetworks",
     "SMTP clients whose header addresses are rewritten: permit_mynetworks, permit, or "
     "networks (local submissions always are)"},
    {"append_at_myorigin", PARAM_BOOL, "yes",
     "qualify unqualified header addresses with @$myorigin"},
    {"append_dot_mydomain", PARAM_BOOL, "no",
     "append .$mydomain to header addresses whose domain has no dot"},
    {"smtp_generic_maps", PARAM_LIST, "",
     "sender addresses rewritten by the SMTP client on the way out (sendmail's genericstable)"},
    {"proxy_interfaces", PARAM_LIST, "",
     "other IP addresses that reach this host (NAT, proxy); an MX pointing at them (port "
     "smtp_default_port) is a loop"},

    /* paths and processes */
    {"queue_directory", PARAM_STR, "/var/spool/tern", "where the queue lives"},
    {"data_directory", PARAM_STR, "/var/lib/tern", "where tern keeps state that is not mail"},
    {"daemon_directory", PARAM_STR, "",
     "where the tern-* service programs are (default: built in)"},
    {"mail_owner", PARAM_STR, "tern", "unprivileged user every service except master runs as"},
    {"service_chroot", PARAM_BOOL, "no",
     "chroot smtpd, cleanup, qmgr and smtp into queue_directory"},
    {"import_environment", PARAM_LIST, "TZ", "environment variables passed to services"},
    {"maillog_file", PARAM_STR, "", "log to this file instead of syslog"},
    {"syslog_name", PARAM_STR, "tern",
     "prefix of every log tag (tern/smtpd); the whole tag with maillog_format = sendmail "
     "(sendmail's -L tag: sm-mta)"},
    {"syslog_facility", PARAM_STR, "mail",
     "syslog facility: mail, daemon, user, local0..local7 ... (docs/logging.md)"},
    {"maillog_format", PARAM_STR, "postfix",
     "message event lines: postfix (QID: to=<>, relay=, status=), sendmail (QID: to=<>, "
     "mailer=, stat=Sent) or json (one object per line) (docs/logging.md)"},
    {"service_restart_delay", PARAM_TIME, "1s",
     "first delay before a crashed service is restarted (doubles up to 1m)"},
    {"metrics_listen", PARAM_STR, "",
     "host:port of the OpenMetrics endpoint, GET /metrics (tern-metrics); empty: none"},
    {"alternate_config_directories", PARAM_LIST, "",
     "config directories a non-root user may name with -C or TERN_CONFIG_DIR"},

    /* tables and aliases */
    {"alias_maps", PARAM_LIST, "lmdb:/etc/aliases", "alias tables searched by local delivery"},
    {"alias_database", PARAM_LIST, "$alias_maps",
     "alias tables built by newaliases (sendmail -bi, tern map -A)"},
    {"recipient_delimiter", PARAM_STR, "+",
     "separates user and extension in user+ext@domain (empty: none)"},

    /* smtpd */
    {"smtpd_listen", PARAM_LIST, "0.0.0.0:25",
     "addresses of the SMTP listener (\"smtpd\"); empty: none"},
    {"submission_listen", PARAM_LIST, "0.0.0.0:587",
     "addresses of the message submission listener (\"submission\": TLS and AUTH required by "
     "default); empty: none"},
    {"smtps_listen", PARAM_LIST, "",
     "addresses of the SMTPS listener (\"smtps\": TLS from the first byte, AUTH required by "
     "default); empty: none"},
    {"smtpd_banner", PARAM_STR, "$myhostname ESMTP tern", "text after 220 in the greeting"},
    {"smtpd_workers", PARAM_INT, "0", "smtpd worker processes (0: one per CPU)"},
    {"cleanup_workers", PARAM_INT, "0",
     "cleanup processes sharing private/cleanup (0: one per CPU); the first also runs pickup"},
    {"smtpd_client_limit", PARAM_INT, "1000",
     "concurrent sessions per smtpd worker; the host's cap is this x smtpd_workers, and "
     "connections over it wait in the listen queue (sendmail's MaxDaemonChildren)"},
    {"smtpd_connection_rate_throttle", PARAM_INT, "0",
     "new connections accepted per second on each listener by all smtpd workers together; "
     "the others wait in the listen queue, none is refused (0: no limit; sendmail's "
     "ConnectionRateThrottle)"},
    {"smtpd_recipient_limit", PARAM_INT, "1000", "recipients per message; more get 452 4.5.3"},
    {"smtpd_hard_error_limit", PARAM_INT, "20", "errors per session before 421 and disconnect"},
    {"smtpd_timeout", PARAM_TIME, "300s", "idle time allowed while waiting for a command"},
    {"smtpd_data_timeout", PARAM_TIME, "600s", "idle time allowed while receiving message data"},
    {"smtpd_line_limit", PARAM_SIZE, "2048", "longest SMTP command line accepted (bytes)"},
    {"smtpd_helo_required", PARAM_BOOL, "no", "require HELO/EHLO before MAIL"},
    {"disable_vrfy_command", PARAM_BOOL, "no", "answer VRFY with 252 and say nothing"},
    {"disable_expn_command", PARAM_BOOL, "no",
     "refuse EXPN (502 5.7.0) and leave it out of the EHLO reply; otherwise EXPN shows "
     "alias_maps members to mynetworks clients"},
    {"help_file", PARAM_STR, "",
     "sendmail's HelpFile: the text of HELP, \"topic<TAB>text\" lines with $v the version "
     "(empty: a built-in text; set but unreadable: HELP answers 502)"},
    {"smtpd_authorized_xclient_hosts", PARAM_LIST, "",
     "networks allowed to use XCLIENT to set the client's address, name, HELO and login "
     "(a trusted proxy or content filter; empty: nobody)"},
    {"smtpd_authorized_xforward_hosts", PARAM_LIST, "",
     "networks allowed to use XFORWARD to set the client attributes logged and written in "
     "the Received header of the next message (empty: nobody)"},
    {"smtpd_disable_etrn_command", PARAM_BOOL, "no",
     "refuse ETRN (502 5.7.0) and leave it out of the EHLO reply (sendmail's noetrn and "
     "listener flag M=E; per listener as LISTENER.smtpd_disable_etrn_command)"},
    {"smtpd_privacy_flags", PARAM_LIST, "",
     "sendmail's PrivacyOptions: goaway, needmailhelo, needexpnhelo, needvrfyhelo, noexpn, "
     "novrfy, noverb, noetrn, noreceipts, nobodyreturn, authwarnings, restrictmailq, "
     "restrictqrun, restrictexpand, public (docs/smtpd.md)"},
    {"smtpd_greet_pause", PARAM_STR, "0",
     "wait this long before the greeting (1500ms, 2s; 0: off); a client that talks first "
     "gets 554 and nothing it sends is done (sendmail's greet_pause; not for mynetworks)"},
    {"smtpd_refuse_load", PARAM_STR, "0",
     "refuse new SMTP connections with 421 4.3.2 while the 1-minute load average is above "
     "this (e.g. 12 or 12.5; 0: never; sendmail's RefuseLA)"},
    {"message_size_limit", PARAM_SIZE, "10240000", "largest message accepted (bytes); 0: no limit"},
    {"smtpd_forbid_bare_newline", PARAM_BOOL, "no",
     "reject message data with a bare LF (550 5.5.2) instead of normalizing it"},
    /* smtpd policy (docs/policy.md) */
    {"smtpd_client_restrictions", PARAM_LIST, "",
     "restrictions on the client (checked at RCPT with smtpd_delay_reject, else at connect)"},
    {"smtpd_helo_restrictions", PARAM_LIST, "", "restrictions on the HELO/EHLO name"},
    {"smtpd_relay_restrictions", PARAM_LIST,
     "permit_mynetworks, permit_sasl_authenticated, permit_tls_clientcerts, "
     "reject_unauth_destination",
     "who may relay, checked at RCPT; the list ends in reject_unauth_destination"},
    {"smtpd_recipient_restrictions", PARAM_LIST, "",
     "restrictions on the recipient, after smtpd_relay_restrictions"},
    {"smtpd_data_restrictions", PARAM_LIST, "", "restrictions at DATA"},
    {"smtpd_end_of_data_restrictions", PARAM_LIST, "",
     "restrictions after the message content, before the final reply"},
    {"smtpd_etrn_restrictions", PARAM_LIST, "",
     "who may use ETRN (empty: every client, as in Postfix and sendmail; ETRN only starts "
     "delivery of mail already queued)"},
    {"promiscuous_relay", PARAM_BOOL, "no",
     "every client may relay anywhere (sendmail's FEATURE(promiscuous_relay)); only for a "
     "relay that no outsider can reach: tern check warns"},
    {"smtpd_delay_reject", PARAM_BOOL, "yes",
     "give client, HELO and sender verdicts at RCPT (sendmail's FEATURE(delay_checks))"},
    {"access_maps", PARAM_LIST, "",
     "sendmail's access file (Connect:, From:, To:, Spam:, GreetPause: entries), checked "
     "before each stage's restriction list, e.g. hash:/etc/mail/access"},
    {"access_spam_mode", PARAM_STR, "friend",
     "sendmail's delay_checks mode: friend (Spam:rcpt FRIEND skips the checks) or hater "
     "(only Spam:rcpt HATER recipients are checked)"},
    {"access_blocklist_recipients", PARAM_BOOL, "no",
     "To: REJECT entries of access_maps refuse recipients (sendmail's "
     "FEATURE(blocklist_recipients))"},
    {"accept_unresolvable_domains", PARAM_BOOL, "no",
     "accept senders whose domain does not exist in DNS (no: 553 5.1.8, DNS failure 451 "
     "4.1.8) from clients outside mynetworks that did not authenticate"},
    {"rbl_reply_maps", PARAM_LIST, "",
     "tables: DNS list zone -> reply template ($client_address, ${client_addr}, "
     "$rbl_domain, $rbl_reason, ...)"},
    {"default_rbl_reply", PARAM_STR,
     "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using "
     "$rbl_domain${rbl_reason?; $rbl_reason}",
     "reply to a client listed in a DNS list without an rbl_reply_maps entry"},
    {"rbl_tempfail_zones", PARAM_LIST, "",
     "DNS list zones whose lookup failures give 451 4.7.1 (sendmail enhdnsbl's t flag); "
     "other zones pass the client and log"},
    {"smtpd_dnsbl_limit", PARAM_INT, "10", "DNS list queries started per connection ahead of need"},
    {"smtpd_ident_lookup", PARAM_BOOL, "no",
     "ask the client's identd (RFC 1413) before the greeting; the user shows in the HELO "
     "reply and Received: (sendmail's TO_IDENT)"},
    {"smtpd_ident_timeout", PARAM_TIME, "5s",
     "time the greeting waits for the client's identd at most"},
    {"smtpd_peername_lookup", PARAM_BOOL, "yes",
     "look up the client's name (PTR, confirmed by A/AAAA) before the greeting"},
    {"smtpd_upstream_proxy_protocol", PARAM_STR, "",
     "haproxy: every connection starts with a PROXY v1 or v2 header naming the real client "
     "(HAProxy send-proxy); empty: none"},
    {"smtpd_upstream_proxy_hosts", PARAM_LIST, "",
     "networks allowed to send the PROXY header; others are closed unread (empty: nobody)"},
    {"smtpd_upstream_proxy_timeout", PARAM_TIME, "5s",
     "time allowed for the whole PROXY header after accept"},
    {"smtpd_auth_required", PARAM_BOOL, "no",
     "MAIL needs a successful AUTH first (530 5.7.0; sendmail's M=a)"},

    /* smtpd connection and rate limits, counted by tern-anvil (docs/smtpd.md) */
    {"smtpd_client_connection_count_limit", PARAM_INT, "50",
     "concurrent sessions one client address may have, across all smtpd workers; more get "
     "421 4.7.0 instead of the greeting (0: no limit; sendmail's ClientConn:)"},
    {"smtpd_client_connection_rate_limit", PARAM_INT, "0",
     "connections one client address may make per anvil_rate_time_unit; more get 421 4.7.0 "
     "(0: no limit; sendmail's ClientRate:)"},
    {"smtpd_client_message_rate_limit", PARAM_INT, "0",
     "MAIL commands one client address may send per anvil_rate_time_unit; more get 450 4.7.1 "
     "(0: no limit)"},
    {"smtpd_client_recipient_rate_limit", PARAM_INT, "0",
     "RCPT commands one client address may send per anvil_rate_time_unit; more get 450 4.7.1 "
     "(0: no limit)"},
    {"smtpd_client_auth_rate_limit", PARAM_INT, "0",
     "AUTH commands one client address may send per anvil_rate_time_unit; more get 450 4.7.1 "
     "(0: no limit)"},
    {"smtpd_client_event_limit_exceptions", PARAM_LIST, "$mynetworks",
     "client networks the smtpd_client_*_limit parameters never apply to"},
    {"anvil_rate_time_unit", PARAM_TIME, "60s",
     "the time unit of the smtpd_client_*_rate_limit parameters"},
    {"anvil_backend", PARAM_STR, "",
     "where tern-anvil keeps the rates: empty counts in this host only; redis:HOST:PORT or "
     "redis:unix:/PATH shares them with every tern using that Redis (docs/smtpd.md)"},
    {"anvil_status_update_time", PARAM_TIME, "600s",
     "how often tern-anvil logs the largest counts and rates it saw, and for which client"},

    /* remote tables through tern-proxymap (docs/remote-tables.md) */
    {"proxymap_pool_size", PARAM_INT, "4",
     "connections (worker threads) tern-proxymap opens at most per ldap:, pgsql: or "
     "socketmap: table; other proxied types get one"},
    {"proxymap_cache_ttl", PARAM_TIME, "60s",
     "how long tern-proxymap remembers a found or not-found answer (0: no cache); temporary "
     "failures are never cached"},
    {"proxymap_cache_size", PARAM_INT, "100000",
     "answers tern-proxymap's cache holds at most; the oldest is dropped first"},
    {"proxymap_lookup_timeout", PARAM_TIME, "30s",
     "a lookup tern-proxymap has not finished by then is answered as a temporary failure "
     "(a safety net over each table's own timeout)"},
    {"proxymap_client_timeout", PARAM_TIME, "20s",
     "how long a service waits for tern-proxymap's answer before the lookup is a temporary "
     "failure"},
    {"proxymap_verbose", PARAM_BOOL, "no",
     "tern-proxymap logs every lookup: table, key, outcome, latency, cache or table (never the "
     "value)"},

    /* smtpd TLS (docs/tls.md) */
    {"smtpd_tls_cert_file", PARAM_STR, "",
     "server certificate (PEM; may hold the chain, and an RSA and an ECDSA pair)"},
    {"smtpd_tls_key_file", PARAM_STR, "$smtpd_tls_cert_file",
     "server private key (PEM, mode 0600; read before the privilege drop)"},
    {"smtpd_tls_CAfile", PARAM_STR, "", "CAs trusted for client certificates (one PEM file)"},
    {"smtpd_tls_CApath", PARAM_STR, "", "CAs trusted for client certificates (c_rehash directory)"},
    {"smtpd_tls_crl_file", PARAM_STR, "", "revoked client certificates (PEM CRLs)"},
    {"smtpd_tls_security_level", PARAM_STR, "",
     "none, may (offer STARTTLS), encrypt (require it); empty: may when a certificate is set"},
    {"smtpd_tls_wrappermode", PARAM_BOOL, "no",
     "TLS from the first byte (SMTPS); the default of the smtps listener"},
    {"smtpd_tls_protocols", PARAM_STR, ">=TLSv1.2",
     "TLS versions offered: \">=TLSv1.2\", or a list such as \"!TLSv1, !TLSv1.1\""},
    {"smtpd_tls_mandatory_protocols", PARAM_STR, "$smtpd_tls_protocols",
     "TLS versions allowed where TLS is required (level encrypt, SMTPS)"},
    {"smtpd_tls_ciphers", PARAM_STR,
     "HIGH:!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!DES:!MD5:!PSK:!SRP:!SHA1:!kRSA",
     "OpenSSL cipher list for TLS 1.2 and older"},
    {"smtpd_tls_exclude_ciphers", PARAM_LIST, "",
     "cipher names or OpenSSL patterns removed from smtpd_tls_ciphers (e.g. AES256, CAMELLIA)"},
    {"smtpd_tls_ask_ccert", PARAM_BOOL, "no",
     "ask clients for a certificate (Outlook and Entourage warn their users when asked)"},
    {"smtpd_tls_req_ccert", PARAM_BOOL, "no",
     "require a verified client certificate (implies ask; level encrypt)"},
    {"smtpd_tls_received_header", PARAM_BOOL, "yes",
     "add the TLS version, cipher and verification to the Received: header"},
    {"smtpd_tls_loglevel", PARAM_INT, "1",
     "0: nothing; 1: the handshake, and a client certificate's subject, issuer and "
     "fingerprint"},
    {"smtpd_tls_session_cache_timeout", PARAM_TIME, "3600s",
     "how long a session ticket resumes; ticket keys rotate at this interval"},
    {"tls_openssl_security_level", PARAM_INT, "-1",
     "OpenSSL security level (-1: OpenSSL's default, 2 on Debian; 1 admits 1024-bit RSA keys)"},
    {"relay_clientcerts", PARAM_LIST, "",
     "tables of client certificate SHA-256 fingerprints (AB:CD:...) that may relay with "
     "permit_tls_clientcerts"},

    /* smtpd AUTH (docs/auth.md) */
    {"smtpd_sasl_auth_enable", PARAM_BOOL, "no",
     "offer SMTP AUTH (through Cyrus SASL in tern-auth); yes by default on submission and smtps"},
    {"smtpd_sasl_path", PARAM_STR, "smtpd",
     "the Cyrus SASL application name: its config is NAME.conf in cyrus_sasl_config_path"},
    {"cyrus_sasl_config_path", PARAM_STR, "",
     "directories searched for the SASL application config (empty: Cyrus' default, "
     "/etc/sasl2:/etc/sasl:/usr/lib/x86_64-linux-gnu/sasl2:/usr/lib/sasl2 on Debian)"},
    {"smtpd_sasl_security_options", PARAM_LIST, "noanonymous",
     "SASL properties required without TLS: noanonymous, noplaintext, noactive, nodictionary, "
     "mutual_auth"},
    {"smtpd_sasl_tls_security_options", PARAM_LIST, "$smtpd_sasl_security_options",
     "SASL properties required under TLS"},
    {"smtpd_tls_auth_only", PARAM_BOOL, "yes",
     "no AUTH before STARTTLS (sendmail's AuthOptions p)"},
    {"smtpd_sasl_local_domain", PARAM_STR, "", "the SASL realm for user names without one"},
    {"smtpd_sasl_authenticated_header", PARAM_BOOL, "no",
     "name the authenticated user in the Received: header"},
    {"auth_time_limit", PARAM_TIME, "30s",
     "time tern-auth allows one SASL step (a password check through saslauthd or PAM); "
     "then the exchange ends and the client gets 454 4.7.0"},
    {"auth_process_limit", PARAM_INT, "100",
     "SASL exchanges tern-auth runs at once (one process each); more wait for a free one"},
    {"smtpd_sasl_response_timeout", PARAM_TIME, "30s",
     "time a client has to answer a 334 AUTH challenge (at most smtpd_timeout); then "
     "smtpd ends the exchange, frees its tern-auth process, and answers the late "
     "response with 454 4.7.0"},
    {"smtpd_sasl_exchange_limit", PARAM_INT, "2",
     "AUTH exchanges one client address may have in progress at once in an smtpd worker "
     "(0: no limit); one more gets 454 4.7.0"},
    {"smtpd_sender_login_maps", PARAM_LIST, "",
     "tables: envelope sender -> the SASL logins that may use it "
     "(reject_sender_login_mismatch)"},
    {"smtpd_sender_restrictions", PARAM_LIST, "",
     "restrictions on the sender (checked at RCPT with smtpd_delay_reject, else at MAIL), "
     "e.g. reject_sender_login_mismatch, check_sender_access"},

    /* smtpd policy services (check_policy_service; Postfix's policy delegation protocol) */
    {"smtpd_policy_service_timeout", PARAM_TIME, "100s",
     "time a policy service has to answer one request, connecting included; then the request "
     "fails"},
    {"smtpd_policy_service_max_idle", PARAM_TIME, "300s",
     "an unused connection to a policy service is closed after this time"},
    {"smtpd_policy_service_max_ttl", PARAM_TIME, "1000s",
     "a connection to a policy service is closed (after its current request) once it is this "
     "old"},
    {"smtpd_policy_service_default_action", PARAM_STR, "451 4.3.5 Server configuration problem",
     "what a check_policy_service answers when the service fails (no connection, timeout, a "
     "malformed reply)"},

    /* milters (the sendmail content filter protocol; docs/milter.md) */
    {"smtpd_milters", PARAM_STR, "",
     "milters for mail received over SMTP, in order: inet:host:port, inet6:[addr]:port, "
     "unix:/path (also local:/path and inet:port@host), each optionally in braces with its own "
     "settings: { unix:/run/x.sock, default_action = accept, command_timeout = 10s }"},
    {"non_smtpd_milters", PARAM_STR, "",
     "milters for mail from the sendmail command (pickup), same form as smtpd_milters"},
    {"milter_default_action", PARAM_STR, "tempfail",
     "what happens when a milter cannot be reached or fails mid-conversation: tempfail, "
     "accept (skip the milter), reject or quarantine"},
    {"milter_protocol", PARAM_INT, "6", "the milter protocol version offered (2 to 6)"},
    {"milter_connect_timeout", PARAM_TIME, "30s",
     "time to connect to a milter and finish the option negotiation"},
    {"milter_command_timeout", PARAM_TIME, "30s",
     "time a milter has to answer one SMTP-stage command (connect, HELO, MAIL, RCPT, DATA, "
     "header, end of headers)"},
    {"milter_content_timeout", PARAM_TIME, "300s",
     "time a milter has to answer one body chunk or the end of the message (a progress reply "
     "restarts it)"},
    {"milter_connect_macros", PARAM_STR,
     "j {daemon_name} {daemon_addr} v _ {client_addr} "
     "{client_name} {client_port} {if_name} {if_addr}",
     "macros sent with the connect step unless the milter asks for its own list"},
    {"milter_helo_macros", PARAM_STR,
     "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
     "macros sent with HELO/EHLO unless the milter asks for its own list"},
    {"milter_mail_macros", PARAM_STR,
     "i {auth_type} {auth_authen} {auth_ssf} {auth_author} {mail_mailer} {mail_host} "
     "{mail_addr}",
     "macros sent with MAIL FROM unless the milter asks for its own list"},
    {"milter_rcpt_macros", PARAM_STR, "i {rcpt_mailer} {rcpt_host} {rcpt_addr}",
     "macros sent with RCPT TO unless the milter asks for its own list"},
    {"milter_data_macros", PARAM_STR, "i",
     "macros sent with DATA unless the milter asks for its own list"},
    {"milter_end_of_header_macros", PARAM_STR, "i",
     "macros sent at the end of the headers unless the milter asks for its own list"},
    {"milter_end_of_data_macros", PARAM_STR, "i {msg_id}",
     "macros sent at the end of the message unless the milter asks for its own list"},
    {"milter_unknown_command_macros", PARAM_STR, "",
     "macros sent with an unknown SMTP command unless the milter asks for its own list"},

    /* cleanup */
    {"hopcount_limit", PARAM_INT, "25", "Received: headers allowed before 554 5.4.6"},
    {"header_size_limit", PARAM_SIZE, "102400", "largest header section accepted (bytes)"},
    {"trusted_users", PARAM_LIST, "root, $mail_owner",
     "users who may set the sender with sendmail -f without an X-Authentication-Warning"},

    /* qmgr */
    {"queue_run_delay", PARAM_TIME, "300s", "how often the deferred queue is scanned"},
    {"etrn_min_interval", PARAM_TIME, "10s",
     "an ETRN for the same domain that moved mail is answered 458 for this long (0: no limit)"},
    {"etrn_index_build_rate", PARAM_INT, "0",
     "deferred queue files read per second when qmgr builds its ETRN index at start (0: no "
     "pause, 256 a turn); ETRN is answered 458 until the index is complete"},
    {"minimal_backoff_time", PARAM_TIME, "300s",
     "shortest wait before a deferred message is retried"},
    {"maximal_backoff_time", PARAM_TIME, "4000s",
     "longest wait before a deferred message is retried"},
    {"maximal_queue_lifetime", PARAM_TIME, "5d", "how long a message may stay in the queue"},
    {"default_destination_concurrency_limit", PARAM_INT, "20",
     "parallel deliveries to one destination"},
    {"qmgr_delivery_limit", PARAM_INT, "100", "parallel deliveries in total"},
    {"default_destination_recipient_limit", PARAM_INT, "50", "recipients in one delivery request"},
    {"restrict_queue_listing", PARAM_BOOL, "no",
     "only root and mail_owner may list the queue (sendmail restrictmailq)"},
    {"delay_warning_time", PARAM_TIME, "4h",
     "send the sender one delay warning after this long in the queue; 0: never"},
    {"bounce_format", PARAM_STR, "mime",
     "layout of delivery status notifications: mime (RFC 3464) or plain (sendmail text)"},
    {"bounce_template_file", PARAM_STR, "",
     "file with failure/delay/success texts replacing the built-in ones (docs/bounces.md)"},
    {"2bounce_notice_recipient", PARAM_STR, "postmaster",
     "who gets a bounce that could not be delivered (a double bounce)"},
    {"double_bounce_sender", PARAM_STR, "double-bounce",
     "sender of double-bounce notices; failures of mail from it are dropped"},
    {"queue_defer_load", PARAM_STR, "0",
     "while the 1-minute load average is above this, newly arrived mail stays queued and "
     "is delivered once the load drops (0: never; sendmail's QueueLA)"},
    {"load_average_file", PARAM_STR, "",
     "file whose first number is the load average (empty: /proc/loadavg; tests use it)"},
    {"restrict_queue_run", PARAM_BOOL, "no",
     "only root and mail_owner may flush the queue (sendmail restrictqrun)"},

    /* local delivery */
    {"mail_spool_directory", PARAM_STR, "/var/mail", "where mbox mailboxes USER live"},
    {"home_mailbox", PARAM_STR, "",
     "mailbox relative to the home directory: Maildir/ (ends in /) or an mbox file; "
     "empty: mail_spool_directory"},
    {"mailbox_command", PARAM_STR, "",
     "deliver to the mailbox through this command, e.g. /usr/bin/procmail -a \"$EXTENSION\""},
    {"forward_path", PARAM_LIST, "$home/.forward",
     ".forward files tried in order ($home, $user, $local, $extension, $domain)"},
    {"allow_mail_to_commands", PARAM_LIST, "alias, forward",
     "sources (alias, forward, include) allowed to deliver to |commands"},
    {"allow_mail_to_files", PARAM_LIST, "alias, forward",
     "sources (alias, forward, include) allowed to deliver to /files"},
    {"default_privs", PARAM_STR, "nobody",
     "user that alias commands and files run as (never root)"},
    {"command_time_limit", PARAM_TIME, "1000s", "time limit of a |command delivery"},
    {"local_command_shell", PARAM_STR, "/bin/sh", "shell that runs |command deliveries (-c)"},
    {"luser_relay", PARAM_STR, "", "where mail for unknown local users goes ($user, $local)"},
    {"local_recipient_maps", PARAM_LIST, "unix:passwd.byname, $alias_maps",
     "tables of local users; smtpd rejects others at RCPT (empty: accept all)"},
    {"local_destination_concurrency_limit", PARAM_INT, "10",
     "local deliveries (worker processes) at once"},

    /* smtp client */
    {"smtp_connect_timeout", PARAM_TIME, "30s", "time allowed to connect to a next hop"},
    {"smtp_helo_timeout", PARAM_TIME, "300s", "time allowed for the greeting and the EHLO reply"},
    {"smtp_command_timeout", PARAM_TIME, "300s",
     "time allowed for a reply to MAIL, RCPT, DATA, QUIT"},
    {"smtp_data_timeout", PARAM_TIME, "600s",
     "time allowed to send the data and get the final reply"},
    {"smtp_helo_name", PARAM_STR, "$myhostname", "name sent in EHLO/HELO"},
    {"smtp_default_port", PARAM_INT, "25", "TCP port of next hops found by MX or A lookup"},
    {"lmtp_tcp_port", PARAM_INT, "24",
     "TCP port of LMTP next hops that name none (lmtp:host, lmtp:[addr])"},
    {"smtp_connection_limit", PARAM_INT, "100", "concurrent outbound connections per smtp process"},
    {"smtp_connection_cache_time_limit", PARAM_TIME, "2s",
     "how long an idle outbound connection is kept for the next delivery (0: no caching)"},
    {"smtp_connection_reuse_count_limit", PARAM_INT, "100",
     "transactions per cached outbound connection (0: no limit)"},
    {"smtp_connection_cache_limit", PARAM_INT, "100",
     "idle outbound connections cached per smtp process (0: no caching)"},
    /* 8-bit content for a next hop without 8BITMIME (docs/smtp-body.md) */
    {"disable_mime_output_conversion", PARAM_BOOL, "no",
     "send 8-bit content as it is to a next hop without 8BITMIME instead of converting it "
     "to quoted-printable/base64 (Postfix's name; sendmail's EightBitMode=p)"},
    {"smtp_8bit_downgrade", PARAM_STR, "convert",
     "8-bit content for a next hop without 8BITMIME: convert (to 7-bit MIME) or bounce "
     "(5.6.3; sendmail's EightBitMode=s); disable_mime_output_conversion = yes overrides"},
    /* smtp client TLS (docs/smtp-tls.md) */
    {"smtp_tls_security_level", PARAM_STR, "may",
     "none, may (STARTTLS when offered; plaintext again once if the handshake fails), encrypt, "
     "verify, secure, dane, dane-only"},
    {"smtp_tls_policy_maps", PARAM_LIST, "",
     "per next hop or domain: \"LEVEL [match=NAME:NAME] [protocols=...] [ciphers=...]\"; "
     "keys as the next hop is written ([host]:port, host, example.com, .example.com)"},
    {"smtp_tls_CAfile", PARAM_STR, "",
     "CAs trusted for server certificates (one PEM file; empty: the system's trust store)"},
    {"smtp_tls_CApath", PARAM_STR, "",
     "CAs trusted for server certificates (c_rehash directory; empty: the system's)"},
    {"smtp_tls_cert_file", PARAM_STR, "",
     "client certificate presented to servers that ask (may be smtpd_tls_cert_file)"},
    {"smtp_tls_key_file", PARAM_STR, "$smtp_tls_cert_file",
     "client private key (PEM, mode 0600; read before the privilege drop)"},
    {"smtp_tls_protocols", PARAM_STR, ">=TLSv1.2",
     "TLS versions offered to servers: \">=TLSv1.2\", or a list such as \"!TLSv1, !TLSv1.1\""},
    {"smtp_tls_ciphers", PARAM_STR,
     "HIGH:!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!DES:!MD5:!PSK:!SRP:!SHA1:!kRSA",
     "OpenSSL cipher list for TLS 1.2 and older"},
    {"smtp_tls_exclude_ciphers", PARAM_LIST, "",
     "cipher names or OpenSSL patterns removed from smtp_tls_ciphers"},
    {"smtp_tls_servername", PARAM_STR, "hostname",
     "SNI sent: hostname (the server's name, MX or next hop), nexthop, a fixed name, or empty "
     "for none"},
    {"smtp_tls_verify_cert_match", PARAM_LIST, "hostname",
     "names a server certificate must match at level verify: hostname, nexthop, dot-nexthop, "
     "or fixed names"},
    {"smtp_tls_secure_cert_match", PARAM_LIST, "nexthop, dot-nexthop",
     "names a server certificate must match at level secure"},
    {"smtp_tls_loglevel", PARAM_INT, "1",
     "0: failures only; 1: one line per handshake; 2: also the certificate's subject, issuer "
     "and fingerprint"},
    {"smtp_tls_session_cache_timeout", PARAM_TIME, "3600s",
     "how long a server's TLS session is kept for resumption (0: no resumption)"},
    {"smtp_dns_support_level", PARAM_STR, "enabled",
     "enabled, or dnssec: trust the AD bit of a validating resolver in dns_servers (DANE)"},
    {"smtp_mta_sts", PARAM_BOOL, "no",
     "look up and apply MTA-STS policies (RFC 8461) of recipient domains"},
    {"smtp_mta_sts_fetch_timeout", PARAM_TIME, "20s", "time allowed to fetch one MTA-STS policy"},
    {"smtp_mta_sts_https_port", PARAM_INT, "443",
     "TCP port policies are fetched from (for tests; RFC 8461 says 443)"},
    {"smtp_mta_sts_cache_size", PARAM_INT, "10000", "MTA-STS policies kept in the cache"},
    {"smtpd_requiretls", PARAM_BOOL, "yes",
     "offer REQUIRETLS (RFC 8689) in EHLO under TLS and accept MAIL ... REQUIRETLS"},
    {"smtputf8_enable", PARAM_BOOL, "yes",
     "offer SMTPUTF8 (RFC 6531) in EHLO and accept UTF-8 addresses after MAIL ... SMTPUTF8"},

    /* smtp client AUTH (docs/smtp-tls.md) */
    {"smtp_sasl_auth_enable", PARAM_BOOL, "no",
     "authenticate to servers that offer AUTH, with smtp_sasl_password_maps"},
    {"smtp_sasl_password_maps", PARAM_LIST, "",
     "credentials \"user:password\" by [host]:port, host, domain (sendmail's AuthInfo)"},
    {"smtp_sender_dependent_authentication", PARAM_BOOL, "no",
     "look up smtp_sasl_password_maps by sender address and @domain first"},
    {"smtp_sasl_security_options", PARAM_LIST, "noplaintext, noanonymous",
     "SASL properties required without TLS"},
    {"smtp_sasl_tls_security_options", PARAM_LIST, "noanonymous",
     "SASL properties required under TLS"},
    {"smtp_sasl_mechanism_filter", PARAM_LIST, "",
     "mechanisms tern may use, of those the server offers (empty: any)"},
    {"dns_servers", PARAM_LIST, "", "DNS servers as ip or ip:port (default: /etc/resolv.conf)"},
    {"dns_timeout", PARAM_TIME, "5s", "time allowed for one DNS query before retry"},

    {0, 0, 0, 0},
};

/* the listeners and their built-in defaults (config.h) */
const struct listener_def listener_table[] = {
    {"smtpd", "smtpd_listen", {NULL}},
    {"submission",
     "submission_listen",
     {"smtpd_tls_security_level=encrypt", "smtpd_sasl_auth_enable=yes", "smtpd_auth_required=yes",
      NULL}},
    {"smtps",
     "smtps_listen",
     {"smtpd_tls_wrappermode=yes", "smtpd_sasl_auth_enable=yes", "smtpd_auth_required=yes", NULL}},
    {NULL, NULL, {NULL}},
};
