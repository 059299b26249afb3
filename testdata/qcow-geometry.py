#!/usr/bin/env python3
"""Writes a qcow (version 1) image with a cluster and L2 table size qemu-img cannot choose.

    qcow-geometry.py FILE CLUSTER_BITS L2_BITS SIZE

The disk gets a plain data cluster at the start, a zlib-compressed cluster (raw deflate, as
qemu writes them) after it, data clusters contiguous in the file at the end of the disk, and
nothing elsewhere. Layout: header, L1 table at 48, then cluster-aligned L2 tables and data.
"""
import struct
import sys
import zlib

path, cbits, l2bits, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
cs = 1 << cbits
span = cs << l2bits
l1n = (size + span - 1) // span
out = bytearray(48 + 8 * l1n)


def align():
    out.extend(bytes(-len(out) % cs))


def new_l2():
    align()
    offset = len(out)
    out.extend(bytes(8 << l2bits))
    return offset


def set_entry(l2, index, value):
    struct.pack_into('>Q', out, l2 + 8 * index, value)


def add_cluster(data):
    align()
    offset = len(out)
    out.extend(data)
    return offset


first = new_l2()
struct.pack_into('>Q', out, 48, first)
set_entry(first, 0, add_cluster(bytes([0x5a]) * cs))
pattern = bytes(range(256)) * (cs // 256) if cs >= 256 else bytes(range(cs))
packer = zlib.compressobj(9, zlib.DEFLATED, -12)
packed = packer.compress(pattern) + packer.flush()
align()
set_entry(first, 1, (1 << 63) | (len(packed) << (63 - cbits)) | len(out))
out.extend(packed)
last_cluster = (size - 1) // cs
if last_cluster >= 3:
    l1_index = last_cluster >> l2bits
    l2 = first if l1_index == 0 else new_l2()
    struct.pack_into('>Q', out, 48 + 8 * l1_index, l2)
    # Two clusters in one L2 table, contiguous in the file (the last one alone if it starts a table).
    clusters = [last_cluster] if last_cluster % (1 << l2bits) == 0 else [last_cluster - 1, last_cluster]
    for k, cluster in enumerate(clusters):
        set_entry(l2, cluster % (1 << l2bits), add_cluster(bytes([0xa5 + k]) * cs))
# Header last: magic "QFI\xfb", version 1, no backing file, mtime 0, size, geometry, no encryption, L1 at 48.
struct.pack_into('>IIQIIQBBHIQ', out, 0, 0x514649fb, 1, 0, 0, 0, size, cbits, l2bits, 0, 0, 48)
with open(path, 'wb') as f:
    f.write(out)
