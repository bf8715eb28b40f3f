"""RSA keys made ahead for the DRACOON stand-in's seeded key pairs (``seed_keys.json``).

An RSA-4096 key takes 0.2-1.5 CPU-s to make, and every dev stack seeds three users, so each
``devstack up`` (and each test's stand-in) spent one to three seconds making keys before it
answered. The stand-in takes these first, in order, and makes more only past them. They
protect nothing (nor do the dev stack's passwords, which its state file lists): a seeded
user's private key is the stand-in's to hand out anyway. Each is stored as its two primes.

    python -m recstore.devstack.seed_keys     # rewrite seed_keys.json with new keys
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from recstore.crypto import new_rsa_key

BUNDLE = Path(__file__).with_name("seed_keys.json")
#: Keys per key pair version: the three default users and the few more tests seed.
PER_VERSION = 8
EXPONENT = 65537


@functools.cache
def bundled(version: str) -> tuple[rsa.RSAPrivateKey, ...]:
    """The bundled keys of key pair ``version`` (none for a version the file lacks)."""
    primes = json.loads(BUNDLE.read_text(encoding="utf-8")).get(version, [])
    return tuple(_from_primes(int(p, 16), int(q, 16)) for p, q in primes)


def _from_primes(p: int, q: int) -> rsa.RSAPrivateKey:
    d = pow(EXPONENT, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(EXPONENT, p * q),
    )
    # made by new_rsa_key and written by main() below: checking them again (as for a key
    # from elsewhere) would cost a quarter second per RSA-4096 key
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def main() -> None:
    bundle = {}
    for version in ("A", "RSA-4096"):
        keys = [new_rsa_key(version).private_numbers() for _ in range(PER_VERSION)]
        bundle[version] = [[f"{k.p:x}", f"{k.q:x}"] for k in keys]
    BUNDLE.write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
