#!/usr/bin/env python3
"""Writes VHDX images qemu-img cannot make, each with the raw bytes a reader must see.

  vhdx_make.py sector4k OUT.vhdx OUT.expected.raw
      a dynamic VHDX with 4096-byte logical sectors (qemu-img has no option for them) and 2 MiB blocks
  vhdx_make.py diff PARENT.vhdx PARENT.raw CHILD.vhdx CHILD.expected.raw [parent-name-in-locator]
      a differencing child of PARENT (a qemu-made VHDX) whose parent_linkage is PARENT's DataWriteGuid;
      blocks: FULLY_PRESENT, PARTIALLY_PRESENT (with a sector bitmap), ZERO, UNMAPPED, NOT_PRESENT
  vhdx_make.py diffwide PARENT.vhdx PARENT.raw CHILD.vhdx CHILD.expected.raw
      a differencing child with 32 MiB blocks: block 0 PARTIALLY_PRESENT with runs of present sectors
      that cross a 4 KiB page of its sector bitmap (sector 32768)
  vhdx_make.py dirty SRC.vhdx SRC.raw OUT.vhdx OUT.expected.raw
      a copy of SRC (a qemu-made dynamic VHDX, 1 MiB blocks) with a log that needs replay: two entries of
      one sequence that allocate a block in the BAT, rewrite and zero sectors of block 0, plus a stale
      entry of another log that must be ignored
  vhdx_make.py guid FILE
      prints the current header's DataWriteGuid

Layouts follow MS-VHDX; nothing here is copied from an implementation.
"""
import os
import struct
import sys
import uuid

MB = 1 << 20
KB = 1 << 10

BAT_GUID = "2DC27766-F623-4200-9D64-115E9BFD4A08"
META_GUID = "8B7CA206-4790-4B9A-B8FE-575F050F886E"
FILE_PARAMS = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B"
DISK_SIZE = "2FA54224-CD1B-4876-B211-5DBED83BF4B8"
PAGE83 = "BECA12AB-B2E6-4523-93EF-C309E000C746"
LOGICAL = "8141BF1D-A96F-4709-BA47-F233A8FAAB5F"
PHYSICAL = "CDA348C7-445D-4471-9CC9-E9885251C556"
PARENT_LOCATOR = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C"
VHDX_LOCATOR_TYPE = "B04AEFB7-D19E-4A81-B789-25B8E9445913"

NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED, FULLY, PARTIAL = 0, 1, 2, 3, 6, 7


def _crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_T = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def guid(s):
    return uuid.UUID(s).bytes_le


def with_crc(buf, at=4):
    b = bytearray(buf)
    b[at:at + 4] = b"\0\0\0\0"
    b[at:at + 4] = struct.pack("<I", crc32c(bytes(b)))
    return bytes(b)


def header(seq, data_write_guid, log_guid=b"\0" * 16, log_offset=MB, log_length=MB):
    h = bytearray(4096)
    struct.pack_into("<4sIQ16s16s16sHHIQ", h, 0, b"head", 0, seq, uuid.uuid4().bytes_le, data_write_guid,
                     log_guid, 0, 1, log_length, log_offset)
    return with_crc(h)


def region_table(bat_off, bat_len, meta_off, meta_len):
    t = bytearray(64 * KB)
    struct.pack_into("<4sIII", t, 0, b"regi", 0, 2, 0)
    struct.pack_into("<16sQII", t, 16, guid(BAT_GUID), bat_off, bat_len, 1)
    struct.pack_into("<16sQII", t, 48, guid(META_GUID), meta_off, meta_len, 1)
    return with_crc(t)


def utf16(s):
    return s.encode("utf-16-le")


def parent_locator(pairs):
    n = len(pairs)
    out = bytearray(20 + 12 * n)
    struct.pack_into("<16sHH", out, 0, guid(VHDX_LOCATOR_TYPE), 0, n)
    data = bytearray()
    base = 20 + 12 * n
    for i, (k, v) in enumerate(pairs):
        kb, vb = utf16(k), utf16(v)
        ko = base + len(data)
        data += kb
        vo = base + len(data)
        data += vb
        struct.pack_into("<IIHH", out, 20 + 12 * i, ko, vo, len(kb), len(vb))
    return bytes(out + data)


def metadata_region(block_size, virtual_size, lss, has_parent, locator=None):
    region = bytearray(MB)
    items = [
        (FILE_PARAMS, struct.pack("<II", block_size, 2 if has_parent else 0)),
        (DISK_SIZE, struct.pack("<Q", virtual_size)),
        (PAGE83, uuid.uuid4().bytes_le),
        (LOGICAL, struct.pack("<I", lss)),
        (PHYSICAL, struct.pack("<I", 4096)),
    ]
    if locator is not None:
        items.append((PARENT_LOCATOR, locator))
    struct.pack_into("<8sHH", region, 0, b"metadata", 0, len(items))
    off = 64 * KB
    for i, (g, data) in enumerate(items):
        virtual_disk = g in (DISK_SIZE, PAGE83, LOGICAL, PHYSICAL)
        flags = 4 | (2 if virtual_disk else 0)  # IsRequired, IsVirtualDisk
        struct.pack_into("<16sIII", region, 32 + 32 * i, guid(g), off, len(data), flags)
        region[off:off + len(data)] = data
        off += (len(data) + 4095) // 4096 * 4096
    return bytes(region)


def bat_entry(state, offset=0):
    return struct.pack("<Q", (offset & ~(MB - 1)) | state)


class Writer:
    """Builds an image: headers at 64/128 KiB, log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB, blocks after."""

    def __init__(self, virtual_size, block_size, lss, has_parent=False, locator=None):
        self.vs, self.bs, self.lss = virtual_size, block_size, lss
        self.ratio = (1 << 23) * lss // block_size
        self.blocks = -(-virtual_size // block_size)
        chunks = -(-self.blocks // self.ratio)
        entries = chunks * (self.ratio + 1) if has_parent else self.blocks + (self.blocks - 1) // self.ratio
        self.bat_len = max(MB, -(-entries * 8 // MB) * MB)
        self.bat = bytearray(self.bat_len)
        self.meta = metadata_region(block_size, virtual_size, lss, has_parent, locator)
        self.next = 3 * MB + self.bat_len
        self.payload = {}  # file offset -> bytes
        self.data_write_guid = uuid.uuid4().bytes_le

    def set_block(self, block, state, data=None):
        off = 0
        if data is not None:
            off = self.alloc(self.bs)
            self.payload[off] = data
        idx = (block + block // self.ratio) * 8
        self.bat[idx:idx + 8] = bat_entry(state, off)
        return off

    def set_bitmap(self, chunk, bitmap):
        off = self.alloc(MB)
        self.payload[off] = bitmap
        idx = (chunk * (self.ratio + 1) + self.ratio) * 8
        self.bat[idx:idx + 8] = bat_entry(6, off)

    def alloc(self, n):
        off = self.next
        self.next += -(-n // MB) * MB
        return off

    def write(self, path):
        with open(path, "wb") as f:
            f.truncate(self.next)
            f.seek(0)
            f.write(b"vhdxfile" + utf16("vdiskload testdata"))
            f.seek(64 * KB)
            f.write(header(1, self.data_write_guid))
            f.seek(128 * KB)
            f.write(header(2, self.data_write_guid))
            rt = region_table(3 * MB, self.bat_len, 2 * MB, MB)
            f.seek(192 * KB)
            f.write(rt)
            f.seek(256 * KB)
            f.write(rt)
            f.seek(2 * MB)
            f.write(self.meta)
            f.seek(3 * MB)
            f.write(self.bat)
            for off, data in self.payload.items():
                for at in range(0, len(data), 65536):  # leave all-zero stretches as holes
                    piece = data[at:at + 65536]
                    if piece.count(0) != len(piece):
                        f.seek(off + at)
                        f.write(piece)


def write_sparse(path, content):
    """Writes content, leaving all-zero 64 KiB stretches as holes."""
    with open(path, "wb") as f:
        f.truncate(len(content))
        for at in range(0, len(content), 65536):
            piece = bytes(content[at:at + 65536])
            if piece.count(0) != len(piece):
                f.seek(at)
                f.write(piece)


def pattern(seed, n):
    block = bytes((seed * 31 + i * 7) & 0xFF for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


def sector4k(out, expected):
    bs, vs = 2 * MB, 64 * MB
    w = Writer(vs, bs, 4096)
    w.set_block(0, FULLY, pattern(1, bs))
    w.set_block(1, ZERO)
    w.set_block(17, FULLY, pattern(2, bs))
    w.set_block(31, FULLY, pattern(3, bs))
    w.write(out)
    with open(expected, "wb") as f:
        f.truncate(vs)
        for block, seed in ((0, 1), (17, 2), (31, 3)):
            f.seek(block * bs)
            f.write(pattern(seed, bs))


def current_header(path):
    with open(path, "rb") as f:
        f.seek(64 * KB)
        h1 = f.read(4096)
        f.seek(128 * KB)
        h2 = f.read(4096)
    s1 = struct.unpack_from("<Q", h1, 8)[0]
    s2 = struct.unpack_from("<Q", h2, 8)[0]
    return (h1, 64 * KB) if s1 >= s2 else (h2, 128 * KB)


def diff(parent, parent_raw, out, expected, name=None):
    h, _ = current_header(parent)
    linkage = "{" + str(uuid.UUID(bytes_le=h[32:48])) + "}"
    with open(parent_raw, "rb") as f:
        content = bytearray(f.read())
    vs = len(content)
    bs = MB
    name = name or os.path.basename(parent)
    locator = parent_locator([
        ("parent_linkage", linkage),
        ("relative_path", ".\\" + name),
        ("absolute_win32_path", "C:\\images\\" + name),
    ])
    w = Writer(vs, bs, 512, has_parent=True, locator=locator)
    full = pattern(7, bs)
    w.set_block(1, FULLY, full)
    content[bs:2 * bs] = full
    # Block 2 partially present: sectors 0-7, 100-163 and the last sector come from the child.
    part = pattern(8, bs)
    w.set_block(2, PARTIAL, part)
    bitmap = bytearray(MB)
    spb = bs // 512
    for s in list(range(0, 8)) + list(range(100, 164)) + [spb - 1]:
        bit = 2 * spb + s  # block 2 of chunk 0
        bitmap[bit // 8] |= 1 << (bit % 8)
        content[2 * bs + s * 512:2 * bs + (s + 1) * 512] = part[s * 512:(s + 1) * 512]
    w.set_bitmap(0, bytes(bitmap))
    w.set_block(3, ZERO)
    content[3 * bs:4 * bs] = bytes(bs)
    w.set_block(4, UNMAPPED)
    content[4 * bs:5 * bs] = bytes(bs)
    w.write(out)
    write_sparse(expected, content)


def diffwide(parent, parent_raw, out, expected):
    h, _ = current_header(parent)
    linkage = "{" + str(uuid.UUID(bytes_le=h[32:48])) + "}"
    with open(parent_raw, "rb") as f:
        content = bytearray(f.read())
    bs = 32 * MB
    name = os.path.basename(parent)
    w = Writer(len(content), bs, 512, has_parent=True,
               locator=parent_locator([("parent_linkage", linkage), ("relative_path", name)]))
    sectors = len(content) // 512
    full = pattern(9, bs)
    part = bytearray(bs)  # only the present sectors hold data: the file stays small and sparse
    bitmap = bytearray(MB)
    for s in list(range(0, 8)) + list(range(32760, 32776)) + [40000, 40001, sectors - 1]:
        bitmap[s // 8] |= 1 << (s % 8)
        part[s * 512:(s + 1) * 512] = full[s * 512:(s + 1) * 512]
        content[s * 512:(s + 1) * 512] = full[s * 512:(s + 1) * 512]
    w.set_block(0, PARTIAL, bytes(part))
    w.set_bitmap(0, bytes(bitmap))
    w.write(out)
    write_sparse(expected, content)


def log_entry(seq, tail, log_guid, file_size, writes, zeros):
    """writes: [(file_offset, 4096 bytes)], zeros: [(file_offset, length)] -> entry bytes."""
    descs = []
    for off, length in zeros:
        descs.append(struct.pack("<4sIQQQ", b"zero", 0, length, off, seq))
    for off, data in writes:
        trailing = struct.unpack_from("<I", data, 4092)[0]
        leading = struct.unpack_from("<Q", data, 0)[0]
        descs.append(struct.pack("<4sIQQQ", b"desc", trailing, leading, off, seq))
    desc_sectors = -(-(64 + 32 * len(descs)) // 4096)
    length = (desc_sectors + len(writes)) * 4096
    e = bytearray(length)
    struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, length, tail, seq, len(descs), 0, log_guid,
                     file_size, file_size)
    for i, d in enumerate(descs):
        e[64 + 32 * i:96 + 32 * i] = d
    for i, (off, data) in enumerate(writes):
        s = (desc_sectors + i) * 4096
        struct.pack_into("<4sI", e, s, b"data", seq >> 32)
        e[s + 8:s + 4092] = data[8:4092]
        struct.pack_into("<I", e, s + 4092, seq & 0xFFFFFFFF)
    return with_crc(e)


def dirty(src, src_raw, out, expected):
    with open(src, "rb") as f:
        img = bytearray(f.read())
    with open(src_raw, "rb") as f:
        content = bytearray(f.read())
    h, h_at = current_header(src)
    seq, log_len, log_off = struct.unpack_from("<Q", h, 8)[0], struct.unpack_from("<I", h, 68)[0], \
        struct.unpack_from("<Q", h, 72)[0]
    # Find the BAT and block 0 through the region table and BAT.
    rt = img[192 * KB:256 * KB]
    bat_off = None
    for i in range(struct.unpack_from("<I", rt, 8)[0]):
        g, off, _ = struct.unpack_from("<16sQI", rt, 16 + 32 * i)
        if g == guid(BAT_GUID):
            bat_off = off
    entry0 = struct.unpack_from("<Q", img, bat_off)[0]
    assert entry0 & 7 == FULLY, "block 0 of the source must be allocated"
    block0 = entry0 & ~(MB - 1)
    bs = MB
    # Data for the newly allocated block 5, appended before the log entry (as a writer would).
    new_block = -(-len(img) // MB) * MB
    img += bytes(new_block - len(img))
    img += pattern(5, bs)
    content[5 * bs:6 * bs] = pattern(5, bs)
    bat_page = bytearray(img[bat_off:bat_off + 4096])
    struct.pack_into("<Q", bat_page, 5 * 8, new_block | FULLY)
    log_guid = uuid.uuid4().bytes_le
    file_size = len(img)
    # Entry 1: the BAT page, a rewritten sector in block 0 and 8 KiB of zeros in block 0.
    sector_a = pattern(11, 4096)
    e1 = log_entry(1000, 0, log_guid, file_size,
                   [(bat_off, bytes(bat_page)), (block0 + 64 * KB, sector_a)],
                   [(block0 + 128 * KB, 8 * KB)])
    # Entry 2 (same sequence): rewrites the sector entry 1 wrote, so the order of replay matters.
    sector_b = pattern(12, 4096)
    e2 = log_entry(1001, 0, log_guid, file_size, [(block0 + 64 * KB, sector_b)], [])
    # A stale entry of an older log, with a higher sequence number: its GUID does not match, so it is ignored.
    stale = log_entry(5000, 0, uuid.uuid4().bytes_le, file_size, [(block0, pattern(13, 4096))], [])
    log = bytearray(log_len)
    log[0:len(e1)] = e1
    log[len(e1):len(e1) + len(e2)] = e2
    at = len(e1) + len(e2)
    log[at:at + len(stale)] = stale
    img[log_off:log_off + log_len] = log
    content[64 * KB:68 * KB] = sector_b
    content[128 * KB:136 * KB] = bytes(8 * KB)
    # The header update: the other slot gets a header with a higher sequence number and the log GUID.
    nh = bytearray(h)
    struct.pack_into("<Q", nh, 8, seq + 1)
    nh[48:64] = log_guid
    other = 128 * KB if h_at == 64 * KB else 64 * KB
    img[other:other + 4096] = with_crc(nh)
    with open(out, "wb") as f:
        f.write(img)
    write_sparse(expected, content)


def main(argv):
    cmd = argv[1]
    if cmd == "sector4k":
        sector4k(argv[2], argv[3])
    elif cmd == "diff":
        diff(argv[2], argv[3], argv[4], argv[5], argv[6] if len(argv) > 6 else None)
    elif cmd == "diffwide":
        diffwide(argv[2], argv[3], argv[4], argv[5])
    elif cmd == "dirty":
        dirty(argv[2], argv[3], argv[4], argv[5])
    elif cmd == "guid":
        h, _ = current_header(argv[2])
        print(uuid.UUID(bytes_le=h[32:48]))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
