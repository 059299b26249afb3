#!/usr/bin/env python3
"""Writes VMDK variants qemu-img cannot make, from a raw image (used by testdata/vmdk.sh).

  vmdk_make.py stream RAW OUT [GRAIN_SECTORS]   VMware-style streamOptimized: grain markers, grain
                                                tables and directory at the end, footer, end-of-stream
  vmdk_make.py sparse RAW OUT GRAIN_SECTORS GTES [zero] [reverse]
                                                hosted sparse (KDMV) with any grain / table size;
                                                'zero': all-zero grains become zeroed-grain entries (1);
                                                'reverse': grains stored in reverse order (no two adjacent)
  vmdk_make.py cowd RAW OUT GRAIN_SECTORS       VMware's older COWD sparse extent (no descriptor)
  vmdk_make.py descsparse FLAT OUT              a sparse header of capacity 0 carrying a monolithicFlat
                                                descriptor that names FLAT (qemu opens its extents)
"""
import struct
import sys
import zlib

SECTOR = 512


def sectors(n):
    return (n + SECTOR - 1) // SECTOR


def pad(b):
    return b + b'\0' * (sectors(len(b)) * SECTOR - len(b))


def descriptor(name, capacity, create_type):
    return ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
            'createType="%s"\n\n# Extent description\nRW %d SPARSE "%s"\n\n'
            '# The Disk Data Base\n#DDB\n\nddb.adapterType = "lsilogic"\n'
            'ddb.virtualHWVersion = "4"\n' % (create_type, capacity, name)).encode()


def header(flags, capacity, grain, desc_off, desc_size, gtes, rgd, gd, overhead, compress, version=1):
    h = b'KDMV' + struct.pack('<IIQQQQIQQQ', version, flags, capacity, grain, desc_off, desc_size, gtes, rgd, gd, overhead)
    h += b'\0' + b'\n \r\n' + struct.pack('<H', compress)
    return pad(h)


def grains_of(raw, grain):
    g = grain * SECTOR
    for i in range(0, len(raw), g):
        yield i // g, raw[i:i + g].ljust(g, b'\0')


def stream(raw, out, grain=128):
    capacity = sectors(len(raw))
    gtes = 512
    desc = pad(descriptor(out.rsplit('/', 1)[-1], capacity, 'streamOptimized'))
    overhead = 1 + len(desc) // SECTOR
    flags = 1 | (1 << 16) | (1 << 17)
    body = bytearray(header(flags, capacity, grain, 1, len(desc) // SECTOR, gtes, 0, 0xffffffffffffffff, overhead, 1, 3))
    body += desc
    gt_count = (capacity + gtes * grain - 1) // (gtes * grain)
    gts = [[0] * gtes for _ in range(gt_count)]
    for index, data in grains_of(raw, grain):
        # Zero grains are left out, except the first, which is stored compressed to test that path.
        if data.count(0) == len(data) and index != 1:
            continue
        z = zlib.compress(data)
        gts[index // gtes][index % gtes] = len(body) // SECTOR
        body += pad(struct.pack('<QI', index * grain, len(z)) + z)
    gd = []
    for t in gts:
        if not any(t):
            gd.append(0)
            continue
        body += pad(struct.pack('<QII', gtes * 4 // SECTOR, 0, 1))
        gd.append(len(body) // SECTOR)
        body += pad(struct.pack('<%dI' % gtes, *t))
    body += pad(struct.pack('<QII', sectors(len(gd) * 4), 0, 2))
    gd_sector = len(body) // SECTOR
    body += pad(struct.pack('<%dI' % len(gd), *gd))
    body += pad(struct.pack('<QII', 1, 0, 3))
    body += header(flags, capacity, grain, 1, len(desc) // SECTOR, gtes, 0, gd_sector, overhead, 1, 3)
    body += pad(struct.pack('<QII', 0, 0, 0))
    open(out, 'wb').write(body)


def sparse(raw, out, grain, gtes, zero=False, reverse=False):
    capacity = sectors(len(raw))
    gt_count = (capacity + gtes * grain - 1) // (gtes * grain)
    desc = pad(descriptor(out.rsplit('/', 1)[-1], capacity, 'monolithicSparse'))
    gd_sector = 1 + len(desc) // SECTOR
    gt_sectors = sectors(gtes * 4)
    first_gt = gd_sector + sectors(gt_count * 4)
    overhead = first_gt + gt_count * gt_sectors
    flags = 1 | (4 if zero else 0)
    table = [0] * (gt_count * gtes)
    stored = [(i, d) for i, d in grains_of(raw, grain) if d.count(0) != len(d)]
    if reverse:
        stored.reverse()
    data = bytearray()
    for n, (index, d) in enumerate(stored):
        table[index] = overhead + len(data) // SECTOR
        data += d
        if reverse:
            data += b'\0' * grain * SECTOR  # a gap, so no two grains are adjacent in the file
    if zero:
        for index, d in grains_of(raw, grain):
            if d.count(0) == len(d) and index % 2 == 0:
                table[index] = 1
    body = bytearray(header(flags, capacity, grain, 1, len(desc) // SECTOR, gtes, 0, gd_sector, overhead, 0))
    body += desc
    body += pad(struct.pack('<%dI' % gt_count, *[first_gt + i * gt_sectors for i in range(gt_count)]))
    for i in range(gt_count):
        body += pad(struct.pack('<%dI' % gtes, *table[i * gtes:(i + 1) * gtes]))
    assert len(body) == overhead * SECTOR
    body += data
    open(out, 'wb').write(body)


def cowd(raw, out, grain):
    capacity = sectors(len(raw))
    gtes = 4096
    gt_count = (capacity + gtes * grain - 1) // (gtes * grain)
    gd_sector = 4
    first_gt = gd_sector + sectors(gt_count * 4)
    table = [0] * (gt_count * gtes)
    next_sector = first_gt + gt_count * gtes * 4 // SECTOR
    data = bytearray()
    for index, d in grains_of(raw, grain):
        if d.count(0) != len(d):
            table[index] = next_sector + len(data) // SECTOR
            data += d
    file_sectors = next_sector + len(data) // SECTOR
    h = b'COWD' + struct.pack('<10I', 1, 3, capacity, grain, gd_sector, gt_count, file_sectors, 0, 0, 0)
    body = bytearray(h.ljust(gd_sector * SECTOR, b'\0'))
    body += pad(struct.pack('<%dI' % gt_count, *[first_gt + i * gtes * 4 // SECTOR for i in range(gt_count)]))
    body += struct.pack('<%dI' % len(table), *table)
    body += data
    open(out, 'wb').write(body)


def descsparse(flat_name, flat_size, out):
    desc = pad(('# Disk DescriptorFile\nversion=1\nCID=0badcafe\nparentCID=ffffffff\n'
                'createType="monolithicFlat"\nRW %d FLAT "%s" 0\n' % (sectors(flat_size), flat_name)).encode())
    body = header(1, 0, 128, 1, len(desc) // SECTOR, 512, 0, 0, 1 + len(desc) // SECTOR, 0)  # no grain directory
    open(out, 'wb').write(body + desc)


def main(argv):
    mode, raw_path, out = argv[1], argv[2], argv[3]
    if mode == 'descsparse':
        return descsparse(raw_path.rsplit('/', 1)[-1], len(open(raw_path, 'rb').read()), out)
    raw = open(raw_path, 'rb').read()
    if mode == 'stream':
        stream(raw, out, int(argv[4]) if len(argv) > 4 else 128)
    elif mode == 'sparse':
        sparse(raw, out, int(argv[4]), int(argv[5]), 'zero' in argv[6:], 'reverse' in argv[6:])
    elif mode == 'cowd':
        cowd(raw, out, int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
