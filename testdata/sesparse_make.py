#!/usr/bin/env python3
"""Writes ESXi seSparse VMDKs (qemu-img cannot create them), as qemu's block/vmdk.c reads them.

    sesparse_make.py OUT.vmdk MIB [--parent HINT CID] [--expected RAW]

OUT.vmdk is the text descriptor (createType="seSparse", one SESPARSE extent); the extent goes to
OUT-sesparse.vmdk beside it. The disk is MIB MiB (at least 33: three grain tables' worth). With --parent,
the descriptor names HINT as parentFileNameHint and CID (8 hex digits) as parentCID. --expected writes the
bytes the disk must read as, with the parent's bytes where the child leaves grains unallocated taken from
RAW (a raw copy of the parent; without a parent unallocated grains read as zeros), to OUT.expected.raw.

The extent, all little-endian, sizes and offsets in 512-byte sectors (qemu: VMDKSESparseConstHeader,
VMDKSESparseVolatileHeader; the layout follows what ESXi logs in hostd.log, as qemu's seSparse commit quotes it):

  sector 0, the const header (512 bytes):
     0 u64 magic                  0x00000000cafebabe
     8 u64 version                0x0000000200000001 (2.1)
    16 u64 capacity               disk size in sectors
    24 u64 grain_size             8 (4 KiB grains: the only size qemu accepts)
    32 u64 grain_table_size       64 (a grain table is 64 sectors: 4096 entries of 8 bytes, 16 MiB of disk)
    40 u64 flags                  0
    48 u64 reserved1..reserved4   0 (four of them, to 80)
    80 u64 volatile_header_offset, 88 volatile_header_size      1, 1
    96 u64 journal_header_offset, 104 journal_header_size       2, 2   (not read: no journal replay)
   112 u64 journal_offset,        120 journal_size              4, 4   (not read)
   128 u64 grain_dir_offset,      136 grain_dir_size            8, 1   (1 sector: 64 entries)
   144 u64 grain_tables_offset,   152 grain_tables_size         16, 192 (room for 3 grain tables)
   160 u64 free_bitmap_offset,    168 free_bitmap_size          208, 8 (not read: no space reclamation)
   176 u64 backmap_offset,        184 backmap_size              216, 8 (not read)
   192 u64 grains_offset,         200 grains_size               224, capacity (room for every grain)
   208 304 bytes of zero padding
  sector 1, the volatile header (512 bytes): u64 magic 0x00000000cafecafe, u64 free_gt_number (how many
    grain tables are in use), u64 next_txn_seq_number, u64 replay_journal (0: clean), 480 bytes of zeros.
  Grain directory entry (u64): 0 = no grain table; 0x10000000_0000NNNN = grain table number NNNN (low 32
    bits), which lies at grain_tables_offset + NNNN * 64.
  Grain table entry (u64), by its top nibble: 0x0 unallocated (the rest 0: the parent's bytes, or zeros),
    0x1 unmapped by the guest (SCSI UNMAP; reads as zeros, the rest still names the old grain), 0x2 zero,
    0x3 allocated: grain number ((e & 0x0fff000000000000) >> 48) | ((e & 0x0000ffffffffffff) << 12), whose
    bytes lie at grains_offset + number * 8.

The grains (4 KiB each; g is the disk's grain number):
  grain directory entry 0 -> grain table 1, entry 1 -> none (16 MiB unallocated), entry 2 -> grain table 0:
  the tables are not in disk order.
  g 0..15         allocated, grain numbers 0..15 in order (one contiguous run in the file)
  g 16..23        allocated, grain numbers 31..24 (no two neighbours adjacent in the file)
  g 24..27        zero (0x2); g 28..31 unmapped (0x1, naming grain 40, which holds stale bytes)
  g 32..47        unallocated; g 48, 49 allocated at grain numbers 4096 + 7 and 8191 (the number's high
                  part is used: its bytes lie 16 MiB into the grain area, the file has a hole before them)
  g 50..63        every third zero, unmapped or unallocated in turn
  g 8192 (32 MiB) allocated at grain number 32; g 8193 zero; the last grain of the disk allocated at 33.
Every other grain is unallocated. Each allocated grain holds bytes that name its disk grain number.
"""
import argparse
import os
import struct

SECTOR = 512
GRAIN = 4096
GT_ENTRIES = 4096
CONST_MAGIC = 0xcafebabe
VOLATILE_MAGIC = 0xcafecafe
VERSION = 0x0000000200000001
GD_OFFSET, GD_SIZE = 8, 1
GT_OFFSET, GT_SIZE = 16, 3 * 64
GRAINS_OFFSET = 224
STALE = 40  # the grain number unmapped entries name


def grain_bytes(g):
    """An allocated grain's content: its disk grain number stamped at every 16 bytes, over a varying byte."""
    stamp = struct.pack('<QQ', g, 0x5e5e5e5e00000000 | g)
    return bytes((b + g) & 0xff for b in stamp) * (GRAIN // 16)


def allocated(number):
    """The grain table entry of an allocated grain: type 3, the number's low 12 bits in bits 48..59, the rest below."""
    return (0x3 << 60) | ((number & 0xfff) << 48) | (number >> 12)


def plan(capacity_grains):
    """{disk grain: grain table entry} for every grain that is not unallocated, and {grain number: bytes}."""
    entries, stored = {}, {}

    def put(g, number):
        entries[g] = allocated(number)
        stored[number] = grain_bytes(g)

    for g in range(16):
        put(g, g)
    for i, g in enumerate(range(16, 24)):
        put(g, 31 - i)
    for g in range(24, 28):
        entries[g] = 0x2 << 60
    for g in range(28, 32):
        entries[g] = (0x1 << 60) | (allocated(STALE) & ((1 << 60) - 1))
    stored[STALE] = b'\xee' * GRAIN  # stale: must never be read
    put(48, 4096 + 7)
    put(49, 8191)
    for g in range(50, 64):
        kind = g % 3
        if kind == 0:
            entries[g] = 0x2 << 60
        elif kind == 1:
            entries[g] = (0x1 << 60) | (allocated(STALE) & ((1 << 60) - 1))
    put(8192, 32)
    entries[8193] = 0x2 << 60
    put(capacity_grains - 1, 33)
    return entries, stored


def const_header(capacity):
    h = struct.pack('<26Q', CONST_MAGIC, VERSION, capacity, 8, 64, 0, 0, 0, 0, 0,
                    1, 1, 2, 2, 4, 4, GD_OFFSET, GD_SIZE, GT_OFFSET, GT_SIZE, 208, 8, 216, 8,
                    GRAINS_OFFSET, capacity)
    return h + bytes(SECTOR - len(h))


def volatile_header(tables):
    h = struct.pack('<4Q', VOLATILE_MAGIC, tables, 1, 0)
    return h + bytes(SECTOR - len(h))


def write_extent(path, mib):
    capacity = mib * 2048
    grains = capacity * SECTOR // GRAIN
    assert grains > 2 * GT_ENTRIES, "the plan needs three grain tables' worth of disk"
    entries, stored = plan(grains)
    # directory entry -> grain table number: entry 0 uses table 1, entry 2 table 0, the last (if any) table 2
    table_of = {0: 1, 2: 0}
    last = (grains - 1) // GT_ENTRIES
    if last not in table_of:
        table_of[last] = 2
    tables = {n: [0] * GT_ENTRIES for n in table_of.values()}
    for g, e in entries.items():
        d = g // GT_ENTRIES
        assert d in table_of, "grain %d lies under a directory entry without a table" % g
        tables[table_of[d]][g % GT_ENTRIES] = e
    with open(path, 'wb') as f:
        f.write(const_header(capacity))
        f.write(volatile_header(len(tables)))
        gd = [0] * (GD_SIZE * SECTOR // 8)
        for d, n in table_of.items():
            gd[d] = 0x1000000000000000 | n
        f.seek(GD_OFFSET * SECTOR)
        f.write(struct.pack('<%dQ' % len(gd), *gd))
        for n, t in tables.items():
            f.seek((GT_OFFSET + n * 64) * SECTOR)
            f.write(struct.pack('<%dQ' % GT_ENTRIES, *t))
        f.seek(GRAINS_OFFSET * SECTOR)
        f.write(bytes(GRAIN))  # the grain area starts in the file even where its first grains are sparse
        for number, data in sorted(stored.items()):
            f.seek(GRAINS_OFFSET * SECTOR + number * GRAIN)
            f.write(data)
    return capacity, entries


def descriptor(extent, capacity, parent):
    lines = ['# Disk DescriptorFile', 'version=1', 'encoding="UTF-8"', 'CID=5e5e0001',
             'parentCID=%s' % (parent[1] if parent else 'ffffffff'), 'isNativeSnapshot="no"', 'createType="seSparse"']
    if parent:
        lines.append('parentFileNameHint="%s"' % parent[0])
    lines += ['', '# Extent description', 'RW %d SESPARSE "%s"' % (capacity, extent), '',
              '# The Disk Data Base', '#DDB', '', 'ddb.adapterType = "lsilogic"', 'ddb.grain = "8"',
              'ddb.virtualHWVersion = "14"', '']
    return '\n'.join(lines).encode()


def expected(out, capacity, entries, parent_raw):
    size = capacity * SECTOR
    data = bytearray(size)
    if parent_raw:
        with open(parent_raw, 'rb') as f:
            base = f.read(size)
        data[:len(base)] = base
    for g, e in entries.items():
        kind = e >> 60
        at = g * GRAIN
        data[at:at + GRAIN] = grain_bytes(g) if kind == 3 else bytes(GRAIN)
    with open(out, 'wb') as f:  # sparse: only the grains holding a non-zero byte are written
        for at in range(0, size, GRAIN):
            if any(data[at:at + GRAIN]):
                f.seek(at)
                f.write(data[at:at + GRAIN])
        f.truncate(size)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out')
    p.add_argument('mib', type=int)
    p.add_argument('--parent', nargs=2, metavar=('HINT', 'CID'))
    p.add_argument('--expected', metavar='RAW', nargs='?', const='')
    a = p.parse_args()
    stem = a.out[:-5] if a.out.endswith('.vmdk') else a.out
    extent = stem + '-sesparse.vmdk'
    capacity, entries = write_extent(extent, a.mib)
    with open(a.out, 'wb') as f:
        f.write(descriptor(os.path.basename(extent), capacity, a.parent))
    if a.expected is not None:
        expected(stem + '.expected.raw', capacity, entries, a.expected)


if __name__ == '__main__':
    main()
