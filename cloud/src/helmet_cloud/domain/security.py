"""Passwords, one-time codes and bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)


@cache
def unknown_user_hash() -> str:
    """A hash no password matches, checked for a username that does not exist: the same scrypt work as for one
    that does, so the time to answer does not tell which usernames exist."""
    return hash_password(secrets.token_urlsafe(32))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" (about 10^10 guesses)


def password_problem(password: str, *, username: str = "") -> str | None:
    """Why ``password`` is too weak for a staff, technician or admin account, or None when it will do.

    At least 12 characters, and not guessable by zxcvbn (common-password lists, names, keyboard walks, dates,
    l33t substitutions, the user name itself) below its score 3.
    """
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters (it has {len(password)})"
    found = zxcvbn(password[:100], user_inputs=[username] if username else [])
    if found["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = found["feedback"]
    why = feedback["warning"] or "it is too easy to guess"
    hint = " ".join(feedback["suggestions"][:1])
    return f"the password is too weak: {why.rstrip('.')}.{' ' + hint if hint else ''}"
