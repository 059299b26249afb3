#!/usr/bin/env python3
"""Overwrites fields of a binary file in place, for image variants qemu cannot make.

    structpatch.py FILE OFFSET FORMAT VALUE [OFFSET FORMAT VALUE ...]

FORMAT is a Python struct format such as '<I' (little-endian u32) or '>Q' (big-endian u64);
OFFSET and VALUE may be written in hex (0x...).
"""
import struct
import sys

path, rest = sys.argv[1], sys.argv[2:]
if not rest or len(rest) % 3:
    sys.exit(__doc__)
with open(path, 'r+b') as f:
    for i in range(0, len(rest), 3):
        f.seek(int(rest[i], 0))
        f.write(struct.pack(rest[i + 1], int(rest[i + 2], 0)))
