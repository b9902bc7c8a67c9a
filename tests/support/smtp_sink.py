#!/usr/bin/python3
"""A real SMTP server for tests (Debian's python3-aiosmtpd) on 127.0.0.1.

Appends one JSON line per accepted message to --out: envelope (from, rcpts), the AUTH login,
the raw content, and the message as Python's email package parses it (decoded subject,
headers, text and html bodies), so C++ tests need no MIME decoder of their own.

  smtp_sink.py --out FILE [--port N] [--reject ADDR]... [--defer ADDR]... [--auth USER:PASS]

--reject answers RCPT for ADDR with 550, --defer with 451; --auth requires AUTH (PLAIN or
LOGIN, allowed without TLS) with that user and password. Prints the bound port on the first
line of stdout, then serves until killed.
"""
import argparse
import asyncio
import email
import email.policy
import json
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--defer", action="append", default=[])
    p.add_argument("--auth", default="")
    return p.parse_args()


class Handler:
    def __init__(self, args):
        self.args = args

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.args.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        if address in self.args.defer:
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        login = session.login_data
        record = {
            "from": envelope.mail_from,
            "rcpts": envelope.rcpt_tos,
            "login": login.decode() if isinstance(login, bytes) else login,
            "raw": raw.decode("utf-8", "replace"),
            "subject": str(msg["subject"]) if msg["subject"] is not None else None,
            "headers": {k: str(v) for k, v in msg.items()},
            "contentType": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with open(self.args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 Ok: queued as ZAPDTEST"


def main():
    args = parse_args()
    kwargs = {}
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
                  and auth_data.password == password.encode())
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    handler = Handler(args)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="sink.test", loop=loop, **kwargs), "127.0.0.1", args.port))
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    sys.exit(main())
