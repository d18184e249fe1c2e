#!/usr/bin/env python3
"""Prints a PostgreSQL-format SCRAM-SHA-256 verifier for the password read from stdin.

bench/e2e.sh uses it for pgbouncer's auth_file (and as a fallback for sluice's config
when sluicectl is unavailable). No SASLprep: meant for the ASCII passwords the harness
generates.
"""
import base64
import hashlib
import hmac
import os
import sys

ITERATIONS = 4096


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def main() -> None:
    password = sys.stdin.read().rstrip("\n").encode("utf-8")
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    print(f"SCRAM-SHA-256${ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}")


if __name__ == "__main__":
    main()
