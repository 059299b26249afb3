#!/usr/bin/env python3
"""Differencing VDI chains as VirtualBox writes them (qemu can neither make nor read them).

    testdata/vdi_diff.py DIR

Writes, under DIR:
  chain/base.vdi                       a dynamic VDI, 4 MiB: blocks 0, 1, 3 allocated, 2 unallocated
  chain/Snapshots/{A}.vdi              differencing, parent base.vdi (found in the directory above)
  chain/Snapshots/{B}.vdi              differencing, parent {A}.vdi (same directory): a chain of three
  chain/expected-A.raw, expected-B.raw what {A} and {B} read as, block by block from the model below
  registry/vm/machine.vbox             a machine file whose media registry places the parent...
  registry/disks/base.vdi              ...here, where no directory search looks
  registry/vm/Snapshots/{C}.vdi        differencing, parent registry/disks/base.vdi
  bad/wrong-uuid/child.vdi             names a parent UUID no VDI beside it has (base.vdi is there)
  bad/modified/child.vdi               its parent base.vdi has another modification UUID than it recorded
  bad/missing/child.vdi                names a parent that is nowhere
  bad/cycle/x.vdi, y.vdi               each the other's parent
  bad/device/child.vdi                 its machine file's registry places the parent at /dev/zero
  bad/outside/vm/child.vdi             its machine file's registry places the parent in bad/outside/elsewhere,
                                       outside the child's directory

The header follows VirtualBox's VDICore.h (VDIPREHEADER + VDIHEADER1PLUS), field by field in vdi() below.
"""
import os
import struct
import sys
import uuid

MIB = 1 << 20
FREE = 0xffffffff   # VDI_IMAGE_BLOCK_FREE: not in this image (a differencing image reads its parent)
ZERO = 0xfffffffe   # VDI_IMAGE_BLOCK_ZERO: reads as zeros, whatever the parent holds


def vbox_uuid(u):
    """RTUUID as stored: time_low, time_mid, time_hi_and_version little-endian, the rest as is."""
    return u.bytes_le


def block_bytes(fill, tag):
    """One 1 MiB block: FILL everywhere, TAG (8 bytes, little-endian) at its start and in its middle."""
    b = bytearray([fill]) * MIB
    b[0:8] = struct.pack('<Q', tag)
    b[MIB // 2:MIB // 2 + 8] = struct.pack('<Q', tag)
    return bytes(b)


def vdi(path, image_type, disk_size, blocks, create, modify, linkage=None, parent_modify=None):
    """Writes a VDI 1.1. BLOCKS: one entry per 1 MiB block, FREE, ZERO, or the block's bytes (stored in order)."""
    n = (disk_size + MIB - 1) // MIB
    assert len(blocks) == n
    off_bmap = 512
    off_data = off_bmap + ((4 * n + 511) // 512) * 512
    data = [b for b in blocks if isinstance(b, bytes)]
    h = bytearray(512)
    text = b'<<< Oracle VM VirtualBox Disk Image >>>\n'
    h[0x000:len(text)] = text                              # VDIPREHEADER.szFileInfo[64]: text, NUL padded
    struct.pack_into('<I', h, 0x040, 0xbeda107f)           # u32Signature: VDI_IMAGE_SIGNATURE
    struct.pack_into('<I', h, 0x044, 0x00010001)           # u32Version: 1.1 (major << 16 | minor)
    struct.pack_into('<I', h, 0x048, 0x190)                # cbHeader: sizeof(VDIHEADER1PLUS), what VirtualBox writes
    struct.pack_into('<I', h, 0x04c, image_type)           # u32Type: 1 normal (dynamic), 2 fixed, 3 undo, 4 diff
    struct.pack_into('<I', h, 0x050, 0)                    # fFlags
    # 0x054 szComment[256]: empty
    struct.pack_into('<I', h, 0x154, off_bmap)             # offBlocks: the block map, after the header
    struct.pack_into('<I', h, 0x158, off_data)             # offData: block 0, after the map (sector aligned)
    struct.pack_into('<4I', h, 0x15c, 0, 0, 0, 512)        # LegacyGeometry: cCylinders, cHeads, cSectors, cbSector 512
    struct.pack_into('<I', h, 0x16c, 0)                    # u32Dummy (was the BIOS translation mode)
    struct.pack_into('<Q', h, 0x170, disk_size)            # cbDisk: the virtual size
    struct.pack_into('<I', h, 0x178, MIB)                  # cbBlock: 1 MiB, VirtualBox's default
    struct.pack_into('<I', h, 0x17c, 0)                    # cbBlockExtra: no per-block data
    struct.pack_into('<I', h, 0x180, n)                    # cBlocks: entries in the block map
    struct.pack_into('<I', h, 0x184, len(data))            # cBlocksAllocated: blocks in the data area
    h[0x188:0x198] = vbox_uuid(create)                     # uuidCreate: this image's UUID
    h[0x198:0x1a8] = vbox_uuid(modify)                     # uuidModify: changes when the image is written
    if linkage:
        h[0x1a8:0x1b8] = vbox_uuid(linkage)                # uuidLinkage: the parent's uuidCreate (diff only)
    if parent_modify:
        h[0x1b8:0x1c8] = vbox_uuid(parent_modify)          # uuidParentModify: the parent's uuidModify when made
    struct.pack_into('<4I', h, 0x1c8, 0, 0, 0, 512)        # LCHSGeometry: cCylinders, cHeads, cSectors, cbSector
    bmap = bytearray(off_data - off_bmap)
    index = 0
    for i, b in enumerate(blocks):
        if isinstance(b, bytes):
            struct.pack_into('<I', bmap, 4 * i, index)     # the block's index in the data area
            index += 1
        else:
            struct.pack_into('<I', bmap, 4 * i, b)         # FREE or ZERO
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(h)
        f.write(bmap)
        for b in data:
            f.write(b)


def view(layers):
    """What the top of LAYERS (top first) reads as: each block from the first layer holding it."""
    out = []
    for i in range(len(layers[0])):
        b = bytes(MIB)
        for layer in layers:
            if layer[i] == FREE:
                continue
            b = bytes(MIB) if layer[i] == ZERO else layer[i]
            break
        out.append(b)
    return b''.join(out)


def u(n):
    return uuid.UUID(int=n)


def main(top):
    size = 4 * MIB
    base = [block_bytes(0x11, 0x1100), block_bytes(0x12, 0x1201), FREE, block_bytes(0x14, 0x1403)]
    a = [FREE, block_bytes(0x21, 0x2101), FREE, ZERO]
    b = [FREE, FREE, block_bytes(0x32, 0x3202), FREE]
    base_id, base_mod = u(0x1001), u(0x1002)
    a_id, a_mod = u(0x2001), u(0x2002)
    b_id, b_mod = u(0x3001), u(0x3002)
    chain = os.path.join(top, 'chain')
    vdi(os.path.join(chain, 'base.vdi'), 1, size, base, base_id, base_mod)
    vdi(os.path.join(chain, 'Snapshots', '{%s}.vdi' % a_id), 4, size, a, a_id, a_mod, base_id, base_mod)
    vdi(os.path.join(chain, 'Snapshots', '{%s}.vdi' % b_id), 4, size, b, b_id, b_mod, a_id, a_mod)
    with open(os.path.join(chain, 'expected-A.raw'), 'wb') as f:
        f.write(view([a, base]))
    with open(os.path.join(chain, 'expected-B.raw'), 'wb') as f:
        f.write(view([b, a, base]))

    reg = os.path.join(top, 'registry')
    c_id = u(0x4001)
    vdi(os.path.join(reg, 'disks', 'base.vdi'), 1, size, base, base_id, base_mod)
    vdi(os.path.join(reg, 'vm', 'Snapshots', '{%s}.vdi' % c_id), 4, size, a, c_id, u(0x4002), base_id, base_mod)
    machine(os.path.join(reg, 'vm', 'machine.vbox'), base_id, '../disks/base.vdi', c_id, 'Snapshots/{%s}.vdi' % c_id)

    bad = os.path.join(top, 'bad')
    vdi(os.path.join(bad, 'wrong-uuid', 'base.vdi'), 1, size, base, base_id, base_mod)
    vdi(os.path.join(bad, 'wrong-uuid', 'child.vdi'), 4, size, a, a_id, a_mod, u(0x9999), base_mod)
    vdi(os.path.join(bad, 'modified', 'base.vdi'), 1, size, base, base_id, u(0x1003))
    vdi(os.path.join(bad, 'modified', 'child.vdi'), 4, size, a, a_id, a_mod, base_id, base_mod)
    vdi(os.path.join(bad, 'missing', 'child.vdi'), 4, size, a, a_id, a_mod, base_id, base_mod)
    x_id, y_id = u(0x5001), u(0x6001)
    vdi(os.path.join(bad, 'cycle', 'x.vdi'), 4, size, a, x_id, u(0x5002), y_id, u(0x6002))
    vdi(os.path.join(bad, 'cycle', 'y.vdi'), 4, size, b, y_id, u(0x6002), x_id, u(0x5002))
    vdi(os.path.join(bad, 'device', 'child.vdi'), 4, size, a, a_id, a_mod, base_id, base_mod)
    machine(os.path.join(bad, 'device', 'machine.vbox'), base_id, '/dev/zero', a_id, 'child.vdi')
    vdi(os.path.join(bad, 'outside', 'elsewhere', 'base.vdi'), 1, size, base, base_id, base_mod)
    vdi(os.path.join(bad, 'outside', 'vm', 'child.vdi'), 4, size, a, a_id, a_mod, base_id, base_mod)
    machine(os.path.join(bad, 'outside', 'vm', 'machine.vbox'), base_id, '../elsewhere/base.vdi', a_id, 'child.vdi')


def machine(path, base_id, base_location, child_id, child_location):
    """A VirtualBox machine file with the media registry VirtualBox writes: the child nested in its parent."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('<?xml version="1.0"?>\n'
                '<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">\n'
                '  <Machine uuid="{%s}" name="vm" OSType="Debian_64">\n'
                '    <MediaRegistry>\n'
                '      <HardDisks>\n'
                '        <HardDisk uuid="{%s}" location="%s" format="VDI" type="Normal">\n'
                '          <HardDisk uuid="{%s}" location="%s" format="VDI"/>\n'
                '        </HardDisk>\n'
                '      </HardDisks>\n'
                '    </MediaRegistry>\n'
                '  </Machine>\n'
                '</VirtualBox>\n' % (u(0x7001), base_id, base_location, child_id, child_location))


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
