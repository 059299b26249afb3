#!/usr/bin/env python3
"""Writes the benchmarks' raw source image: a sparse file whose content looks like a used disk.

    make-source.py FILE SIZE_BYTES

The disk is cut into runs of 64 KiB to 4 MiB; each run is, by weight:
  30% incompressible data (random bytes),
  30% compressible data (text over a 16-letter alphabet, ~2:1 with deflate, 1 in 8 blocks zeroed
      the way file systems leave freed blocks inside used areas),
  15% written zeros (allocated in the raw file, a zero run for every converter),
  25% holes (never written).
The same seed gives the same bytes on every machine (Python 3.9+), so a cached image stays valid.
"""
import os
import random
import sys

SEED = 20240601
KIB = 1024
BLOCK = 4 * KIB
# 256 byte values onto 16 letters and a space: low-entropy bytes that compress like text
ALPHABET = b"etaoinshrdlucmf "
TEXT = bytes(ALPHABET[i % len(ALPHABET)] for i in range(256))


def runs(size, rnd):
    pos = 0
    kinds = ["random", "text", "zeros", "hole"]
    weights = [30, 30, 15, 25]
    while pos < size:
        length = min(size - pos, rnd.randrange(1, 65) * 64 * KIB)
        yield pos, length, rnd.choices(kinds, weights)[0]
        pos += length


def text(length, rnd):
    data = bytearray(rnd.randbytes(length).translate(TEXT))
    for b in range(0, length, BLOCK):
        if rnd.randrange(8) == 0:
            data[b:b + BLOCK] = bytes(min(BLOCK, length - b))
    return bytes(data)


def main():
    path, size = sys.argv[1], int(sys.argv[2])
    if size <= 0 or size % (64 * KIB):
        sys.exit("make-source.py: size must be a positive multiple of 64 KiB")
    rnd = random.Random(SEED)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.truncate(size)
        for pos, length, kind in runs(size, rnd):
            if kind == "hole":
                continue
            if kind == "random":
                data = rnd.randbytes(length)
            elif kind == "text":
                data = text(length, rnd)
            else:
                data = bytes(length)
            f.seek(pos)
            f.write(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
