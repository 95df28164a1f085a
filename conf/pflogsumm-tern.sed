# pflogsumm-tern.sed - tern's maillog_format = postfix log, for pflogsumm:
#   sed -f pflogsumm-tern.sed /var/log/mail.log | pflogsumm --syslog-name=tern
# pflogsumm counts a message received from smtpd's "client=" line and
# pickup's "uid=" line; tern's cleanup writes both.  It also reads the
# delivery line only with nothing but conn_use= between relay= and delay=;
# tern's smtp adds tls= there.  (docs/logging.md)
s#/cleanup\[\([0-9]*\)\]: \([0-9A-Za-z]*\): client=#/smtpd[\1]: \2: client=#
s#/cleanup\[\([0-9]*\)\]: \([0-9A-Za-z]*\): uid=#/pickup[\1]: \2: uid=#
s#, tls=[^,]*, delay=#, delay=#
