#!/usr/bin/env python3
"""Writes a pool of distinct sealed session cookies for bench/run, one `crocante_session=...` a line.

    SESSION_SECRET=... python3 bench/seal-pool.py --prefix bench-1a2b --count 300000 --out cookies.txt

Token i is `PREFIX-i` (i zero-padded to 7 digits), so the run can count distinct tokens in the
stand-in backend's record by prefix without keeping a list of tokens. Sealed as the origin seals
(see docs: origin-bff.md, and LogoutCore's SealedSession): base64url without padding of
iv (16 random bytes) || GCM tag (16) || AES-256-GCM ciphertext of `{"token":"…","issuedAt":ms}`,
the key being SHA-256 of the secret's UTF-8 bytes. Done here rather than by one `crocante-logout
seal` process per token because a pool large enough not to repeat within a run (hundreds of
thousands) would take minutes that way; bench/run checks that crocante-logout opens the first
cookie of the pool and sends its token to the backend before anything is measured.
"""
import argparse
import base64
import hashlib
import os
import sys
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    secret = os.environ.get("SESSION_SECRET", "")
    if not secret:
        sys.exit("seal-pool.py: SESSION_SECRET is not set")
    aead = AESGCM(hashlib.sha256(secret.encode()).digest())
    issued_at = int(time.time() * 1000)
    with open(args.out, "w") as f:
        for i in range(args.count):
            plaintext = f'{{"token":"{args.prefix}-{i:07d}","issuedAt":{issued_at}}}'.encode()
            iv = os.urandom(16)
            sealed = aead.encrypt(iv, plaintext, None)  # ciphertext || tag
            value = base64.urlsafe_b64encode(iv + sealed[-16:] + sealed[:-16]).rstrip(b"=").decode()
            f.write(f"crocante_session={value}\n")


if __name__ == "__main__":
    main()
