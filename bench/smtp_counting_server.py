"""A local SMTP server in its own process (as a real mail server would be) that counts what
arrives per recipient. Prints "READY" when listening; on a line "REPORT" on stdin, prints the
counts as JSON. Usage: python bench/smtp_counting_server.py PORT"""

import json
import sys
import threading
from collections import Counter

from aiosmtpd.controller import Controller


class Counting:
    def __init__(self):
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received[rcpt] += 1
        return "250 OK"


if __name__ == "__main__":
    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() == "REPORT":
            with handler.lock:
                print(json.dumps(dict(handler.received)), flush=True)
    controller.stop()
