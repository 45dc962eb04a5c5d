#!/usr/bin/env python3
"""A test SMTP server (aiosmtpd) that stores every accepted message as JSON.

Each message goes to DIR/NNNNNN.json as {"mail_from": ..., "rcpt_tos": [...], "mail_options": [...], "data": "..."}, written
atomically; the numbering continues across restarts. Recipients script failures by their local part:

  reject*@...    RCPT gets 550 5.1.1 mailbox unavailable
  tempfail*@...  the first RCPT of that address (in this process) gets 451 4.3.0 try again later
  slow*@...      the reply to the end of DATA comes after 3 seconds

--no-8bitmime leaves 8BITMIME out of the EHLO reply. --silent accepts connections and never says anything (for client timeout tests). Prints "ready PORT" once
listening; exits on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write("smtp-sink: aiosmtpd is missing; install aiosmtpd: python3 -m pip install aiosmtpd\n")
    sys.exit(3)


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.sequence = len([name for name in os.listdir(directory) if name.endswith(".json")])
        self.tempfailed = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("tempfail") and address.lower() not in self.tempfailed:
            self.tempfailed.add(address.lower())
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(address.split("@", 1)[0].lower().startswith("slow") for address in envelope.rcpt_tos):
            await asyncio.sleep(3)
        self.sequence += 1
        name = "%06d.json" % self.sequence
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "data": envelope.original_content.decode("utf-8", errors="replace"),
        }
        temporary = os.path.join(self.directory, "." + name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.replace(temporary, os.path.join(self.directory, name))
        return "250 2.0.0 OK queued as %06d" % self.sequence


class Silent(asyncio.Protocol):
    """Accepts a connection and never answers."""

    def data_received(self, data):
        pass


def parse_arguments():
    parser = argparse.ArgumentParser(description="aiosmtpd test sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password", default="")
    parser.add_argument("--auth-mechanisms", help="comma-separated, e.g. LOGIN (default: PLAIN,LOGIN)")
    parser.add_argument("--no-8bitmime", action="store_true", help="do not announce 8BITMIME")
    parser.add_argument("--silent", action="store_true")
    return parser.parse_args()


def make_factory(arguments, loop):
    handler = Handler(arguments.dir)
    context = None
    if arguments.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(arguments.tls_cert, arguments.tls_key)
    implicit = context if arguments.implicit_tls else None
    options = {
        "hostname": "sink.localhost",
        "loop": loop,
        "tls_context": None if arguments.implicit_tls else context,
        "require_starttls": arguments.require_starttls,
        # aiosmtpd announces 8BITMIME exactly when it does not decode the data itself.
        "decode_data": arguments.no_8bitmime,
        # AUTH only over TLS when STARTTLS is available; aiosmtpd does not see implicit TLS, so allow it there.
        "auth_require_tls": context is not None and not arguments.implicit_tls,
    }
    if arguments.auth_user is not None:
        user = arguments.auth_user.encode()
        password = arguments.auth_password.encode()

        def authenticator(server, session, envelope, mechanism, data):
            valid = isinstance(data, LoginPassword) and data.login == user and data.password == password
            return AuthResult(success=valid, handled=False)

        options["authenticator"] = authenticator
        options["auth_required"] = True
        if arguments.auth_mechanisms:
            allowed = {name.strip().upper() for name in arguments.auth_mechanisms.split(",")}
            options["auth_exclude_mechanism"] = [name for name in ("PLAIN", "LOGIN") if name not in allowed]
    else:
        # No credentials configured: do not announce AUTH on plaintext connections.
        options["auth_require_tls"] = True
    if arguments.silent:
        return Silent, implicit
    return (lambda: SMTP(handler, **options)), implicit


async def main():
    arguments = parse_arguments()
    # aiosmtpd warns about plaintext AUTH and its own deprecations on every session: keep stderr for errors.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    os.makedirs(arguments.dir, exist_ok=True)
    loop = asyncio.get_running_loop()
    factory, implicit = make_factory(arguments, loop)
    server = await loop.create_server(factory, host=arguments.host, port=arguments.port, ssl=implicit, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    print("ready %d" % port, flush=True)
    stop = asyncio.Event()
    # A parent's thread may have blocked these (Swift test runners do), and a child inherits the mask.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
