#!/usr/bin/env python3
"""Makes the VHD variants qemu-img cannot make (testdata/vhd.sh uses it).

  vhdtool.py batch < COMMANDS
      runs one command per line (shell words, without "vhdtool.py"): one python start-up for all.
  vhdtool.py footer FILE [--app APP] [--geometry C,H,S] [--size BYTES]
      rewrites the footer(s) of a VHD (the copy at 0 of a dynamic disk too) with a new creator
      application, CHS geometry or current size, recomputing the checksum.
  vhdtool.py dynamic RAW OUT --block-size N
      writes RAW as a dynamic VHD with blocks of N bytes (qemu only makes 2 MiB blocks); every
      block with data is allocated with a full sector bitmap, as qemu writes them.
  vhdtool.py child PARENT PARENT_RAW OUT EXPECTED --block-size N --write OFF:LEN:BYTE...
                   [--w2ru NAME] [--w2ku NAME] [--macx NAME]
      writes a differencing VHD over PARENT (whose content is PARENT_RAW) with the given writes,
      setting sector-bitmap bits for the written sectors only; the unwritten sectors of allocated
      blocks hold 0xEE garbage a reader must not return. EXPECTED gets the content the child must
      read as: PARENT_RAW overlaid with the writes. Parent locators: W2ru/W2ku are UTF-16LE
      Windows paths, MacX a UTF-8 file:// URL.
"""
import argparse
import shlex
import sys
import struct
import urllib.parse
import uuid

SECTOR = 512
FOOTER = struct.Struct('>8sIIQI4sHH4sQQHBBII16sB427x')
DYN = struct.Struct('>8sQQIIII16sII512s')
LOCATOR = struct.Struct('>4sIIIQ')


def checksum(buf):
    return ~sum(buf) & 0xffffffff


def footer_bytes(fields):
    f = list(fields)
    f[15] = 0
    f[15] = checksum(FOOTER.pack(*f))
    return FOOTER.pack(*f)


def make_footer(size, disk_type, app=b'qemu', geometry=None, data_offset=SECTOR, uid=None):
    c, h, s = geometry or chs(size // SECTOR)
    return [b'conectix', 2, 0x10000, data_offset, 0, app, 5, 3, b'Wi2k', size, size, c, h, s,
            disk_type, 0, (uid or uuid.uuid4()).bytes, 0]


def chs(total):
    """The geometry algorithm of the VHD specification (appendix), as qemu applies it."""
    total = min(total, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def patch_footer(args):
    with open(args.file, 'r+b') as f:
        f.seek(0, 2)
        end = f.tell()
        f.seek(0)
        head = f.read(SECTOR)
        places = [end - SECTOR]
        if head[:8] == b'conectix':
            places.append(0)
        for at in places:
            f.seek(at)
            fields = list(FOOTER.unpack(f.read(SECTOR)))
            if args.app is not None:
                fields[5] = args.app.encode().ljust(4, b'\0')[:4]
            if args.geometry:
                fields[11], fields[12], fields[13] = (int(x) for x in args.geometry.split(','))
            if args.size is not None:
                fields[9] = fields[10] = args.size
            f.seek(at)
            f.write(footer_bytes(fields))


def bitmap_size(block_size):
    return (-(-block_size // SECTOR // 8) + SECTOR - 1) // SECTOR * SECTOR


def write_sparse(out, size, block_size, blocks, disk_type, footer_fields, parent=None, locators=()):
    """blocks: {index: (bitmap bytes, data bytes)}; locators: [(code, payload)]."""
    entries = -(-size // block_size)
    bat_at = 3 * SECTOR
    bat_len = -(-entries * 4 // SECTOR) * SECTOR
    pos = bat_at + bat_len
    loc_entries = []
    loc_data = []
    for code, payload in locators:
        space = -(-len(payload) // SECTOR) * SECTOR
        loc_entries.append((code, space, len(payload), 0, pos))
        loc_data.append((pos, payload))
        pos += space
    bat = [0xffffffff] * entries
    bsize = bitmap_size(block_size)
    placed = []
    for index in sorted(blocks):
        bat[index] = pos // SECTOR
        placed.append((pos, blocks[index]))
        pos += bsize + block_size
    parent_uid, parent_name = (parent or (bytes(16), ''))
    name = parent_name.encode('utf-16-be')[:512].ljust(512, b'\0')
    dyn = DYN.pack(b'cxsparse', 0xffffffffffffffff, bat_at, 0x10000, entries, block_size, 0,
                   parent_uid, 0, 0, name)
    locs = b''.join(LOCATOR.pack(*e) for e in loc_entries).ljust(8 * LOCATOR.size, b'\0')
    dyn = dyn + locs + bytes(256)
    dyn = dyn[:36] + struct.pack('>I', checksum(dyn)) + dyn[40:]
    foot = footer_bytes(footer_fields)
    with open(out, 'wb') as f:
        f.write(foot)
        f.write(dyn)
        f.write(b''.join(struct.pack('>I', e) for e in bat).ljust(bat_len, b'\xff'))
        for at, payload in loc_data:
            f.seek(at)
            f.write(payload)
        for at, (bitmap, data) in placed:
            f.seek(at)
            f.write(bitmap.ljust(bsize, b'\0'))
            f.write(data)
        f.seek(pos)
        f.write(foot)


def dynamic(args):
    with open(args.raw, 'rb') as f:
        raw = f.read()
    size = len(raw)
    bs = args.block_size
    blocks = {}
    for i in range(0, size, bs):
        data = raw[i:i + bs].ljust(bs, b'\0')
        if any(data):
            blocks[i // bs] = (b'\xff' * (bs // SECTOR // 8 or 1), data)
    write_sparse(args.out, size, bs, blocks, 3, make_footer(size, 3))


def child(args):
    with open(args.parent, 'rb') as f:
        pfoot = list(FOOTER.unpack(f.read(SECTOR)))
    with open(args.parent_raw, 'rb') as f:
        expected = bytearray(f.read())
    size = len(expected)
    bs = args.block_size
    written = set()
    for w in args.write:
        off, length, byte = (int(x, 0) for x in w.split(':'))
        if off % SECTOR or length % SECTOR:
            raise SystemExit('vhdtool.py: writes must be whole sectors: ' + w)
        expected[off:off + length] = bytes([byte]) * length
        written.update(range(off // SECTOR, (off + length) // SECTOR))
    blocks = {}
    per_block = bs // SECTOR
    for index in sorted({s // per_block for s in written}):
        bitmap = bytearray(max(1, per_block // 8))
        data = bytearray(b'\xee' * bs)
        for s in range(index * per_block, (index + 1) * per_block):
            if s in written:
                k = s - index * per_block
                bitmap[k // 8] |= 0x80 >> (k % 8)  # the sector's bit, most significant bit first
                data[k * SECTOR:(k + 1) * SECTOR] = expected[s * SECTOR:(s + 1) * SECTOR]
        blocks[index] = (bytes(bitmap), bytes(data))
    locators = []
    if args.w2ru:
        locators.append((b'W2ru', args.w2ru.encode('utf-16-le')))
    if args.w2ku:
        locators.append((b'W2ku', args.w2ku.encode('utf-16-le')))
    if args.macx:
        locators.append((b'MacX', ('file://' + urllib.parse.quote(args.macx)).encode()))
    fields = make_footer(size, 4, app=pfoot[5], geometry=pfoot[11:14])
    fields[9], fields[10] = pfoot[9], pfoot[10]
    name = (args.w2ru or args.w2ku or args.macx or '').replace('\\', '/').split('/')[-1]
    write_sparse(args.out, size, bs, blocks, 4, fields, parent=(pfoot[16], name), locators=locators)
    with open(args.expected, 'wb') as f:
        f.write(expected)


def main():
    parser = make_parser()
    args = parser.parse_args()
    if args.cmd == 'batch':
        for line in sys.stdin:
            words = shlex.split(line)
            if words:
                one = parser.parse_args(words)
                one.run(one)
    else:
        args.run(args)


def make_parser():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('footer')
    a.add_argument('file')
    a.add_argument('--app')
    a.add_argument('--geometry')
    a.add_argument('--size', type=int)
    a.set_defaults(run=patch_footer)
    a = sub.add_parser('dynamic')
    a.add_argument('raw')
    a.add_argument('out')
    a.add_argument('--block-size', type=int, required=True)
    a.set_defaults(run=dynamic)
    a = sub.add_parser('child')
    for n in ('parent', 'parent_raw', 'out', 'expected'):
        a.add_argument(n)
    a.add_argument('--block-size', type=int, default=2 << 20)
    a.add_argument('--write', action='append', default=[])
    a.add_argument('--w2ru')
    a.add_argument('--w2ku')
    a.add_argument('--macx')
    a.set_defaults(run=child)
    sub.add_parser('batch')
    return p


if __name__ == '__main__':
    main()
