"""Encryption throughput: recstore's FileEncryptor beside raw one-shot AES-GCM, same run.

Prints MB/s for ``update`` (allocates each output), ``update_into`` (reuses one buffer, what
the pipeline does) and ``AESGCM.encrypt`` over the same 20 MB chunks, the ratios to the raw
figure, and peak RSS. Run: ``python bench/crypto.py`` (or ``make bench``).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

from _stack import QUICK
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recstore.crypto import FileEncryptor, generate_file_key

CHUNK = 20 * 1000 * 1000
CHUNKS = 2 if QUICK else 10
ROUNDS = 1 if QUICK else 3


def best_rate(work: Callable[[], None]) -> float:
    """MB/s of the best of a few rounds (the least disturbed by the other core's load)."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return CHUNK * CHUNKS / best / 1e6


def main() -> None:
    chunk = os.urandom(CHUNK)
    out = bytearray(CHUNK + 15)

    def with_update() -> None:
        encryptor = FileEncryptor(generate_file_key())
        for _ in range(CHUNKS):
            encryptor.update(chunk)
        encryptor.finalize()

    def with_update_into() -> None:
        encryptor = FileEncryptor(generate_file_key())
        for _ in range(CHUNKS):
            encryptor.update_into(chunk, out)
        encryptor.finalize()

    def raw() -> None:
        key = generate_file_key()
        aead = AESGCM(key.key)
        for _ in range(CHUNKS):
            aead.encrypt(key.iv, chunk, None)

    rates = {
        "AESGCM.encrypt (raw, one shot per chunk)": best_rate(raw),
        "FileEncryptor.update": best_rate(with_update),
        "FileEncryptor.update_into": best_rate(with_update_into),
    }
    reference = rates["AESGCM.encrypt (raw, one shot per chunk)"]
    print(f"{CHUNKS} chunks of {CHUNK / 1e6:.0f} MB, best of {ROUNDS} rounds")
    for name, rate in rates.items():
        print(f"  {name:<42} {rate:8.0f} MB/s   ratio to raw {rate / reference:5.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
