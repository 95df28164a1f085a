"""devsink - an SMTP sink for the development instance: saves every message
it receives as DIR/<n>.eml (envelope in X-Sink-* headers on top)."""
import os
import sys
import time

from aiosmtpd.controller import Controller


class SaveHandler:
    def __init__(self, directory):
        self.directory = directory
        self.count = len(os.listdir(directory))

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, "%d.eml" % self.count)
        with open(path, "wb") as fp:
            fp.write(b"X-Sink-From: <%s>\r\n" % envelope.mail_from.encode())
            for rcpt in envelope.rcpt_tos:
                fp.write(b"X-Sink-To: <%s>\r\n" % rcpt.encode())
            fp.write(envelope.original_content)
        print("devsink: saved %s" % path, flush=True)
        return "250 2.0.0 Ok: saved"


def main():
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(directory, exist_ok=True)
    ctl = Controller(SaveHandler(directory), hostname=host, port=port, decode_data=False)
    ctl.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        ctl.stop()


if __name__ == "__main__":
    main()
