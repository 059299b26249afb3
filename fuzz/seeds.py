#!/usr/bin/env python3
"""Seed inputs for the fuzz targets, made from the images the testdata scripts generate.

    fuzz/seeds.py OUT [--testdata DIR]

Runs every testdata script into DIR (a temporary directory unless given; an existing DIR with the images is
reused), then writes OUT/<class>.<method>/<image name> for each target: the image as a SparseFile input
(see vdisk-formats/src/test/java/org/vdiskload/testing/fuzz/SparseFile.java) behind a flags byte. Runs of guest
data are cut short (a seed is about metadata; its size bounds the fuzzer's speed): a non-zero run longer than
4 KiB keeps its first 1 KiB. Non-image targets (layout, compressed sources, NBD, FUSE) get seeds written here
from scratch.
"""
import gzip
import hashlib
import lzma
import os
import struct
import subprocess
import sys
import tempfile
import bz2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["qcow2", "qcow", "vmdk", "vdi", "vhd", "vhdx", "vhdx-made", "disks", "every-format"]
GRAIN = 512
CHECK = 8  # ImageTarget's flag: also run the format's check
MAX_FILE = 64 << 20


def nonzero_runs(b, grain=GRAIN):
    """[start, end) runs of grains holding a non-zero byte; the last grain always counts (the file's length)."""
    n = len(b)
    zero = bytes(grain)
    runs = []
    pos = 0
    while pos < n:
        end = min(n, pos + grain)
        if b[pos:end] != zero[:end - pos] or end == n:
            if runs and runs[-1][1] == pos:
                runs[-1][1] = end
            else:
                runs.append([pos, end])
        pos = end
    return runs


def encode(content, flags=0, keep=None, trim=(4096, 1024)):
    """The SparseFile input for content: flags byte, then chunks of at most 65535 bytes."""
    out = bytearray([flags])
    for start, end in nonzero_runs(content):
        if keep is not None:
            parts = [(s, min(s + GRAIN, end)) for s in range(start, end, GRAIN) if keep(s, content)]
        elif end - start > trim[0]:
            parts = [(start, start + trim[1])] + ([(end - GRAIN, end)] if end == len(content) else [])
        else:
            parts = [(start, end)]
        for s, e in parts:
            for c in range(s, e, 0xffff):
                data = content[c:min(e, c + 0xffff)]
                out += struct.pack("<IH", c, len(data)) + data
    return bytes(out)


def write(out_dir, target, name, data):
    d = os.path.join(out_dir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def images(testdata, script, suffixes):
    d = os.path.join(testdata, script)
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p) and name.endswith(suffixes) and os.path.getsize(p) <= MAX_FILE:
            yield name, p


def read(p):
    with open(p, "rb") as f:
        return f.read()


def magic(content):
    return content[:4]


VMDK_SPARSE_VIA_DESCRIPTOR = 16  # VmdkFuzzTarget: open through a descriptor naming the extent
VMDK_AS_DELTA = 32
SESPARSE_MAGIC = b"\xbe\xba\xfe\xca"  # the first bytes of a seSparse extent's const header (u64 0xcafebabe)


def image_seeds(testdata, out):
    """Seeds for the targets whose input is a whole image file."""
    plan = [
        ("org.vdiskload.format.qcow2.Qcow2FuzzTarget.image", [("qcow2", ".qcow2"), ("every-format", ".qcow2")]),
        ("org.vdiskload.format.qcow.QcowFuzzTarget.image", [("qcow", ".qcow"), ("every-format", ".qcow")]),
        ("org.vdiskload.format.vdi.VdiFuzzTarget.image", [("vdi", ".vdi"), ("every-format", ".vdi")]),
        ("org.vdiskload.format.vhd.VhdFuzzTarget.image", [("vhd", ".vhd"), ("every-format", ".vhd")]),
        ("org.vdiskload.format.vhdx.VhdxFuzzTarget.image", [("vhdx", ".vhdx"), ("vhdx-made", ".vhdx"), ("every-format", ".vhdx")]),
        ("org.vdiskload.format.vmdk.VmdkFuzzTarget.sparse", [("vmdk", ".vmdk"), ("every-format", ".vmdk")]),
    ]
    for target, sources in plan:
        for script, suffix in sources:
            for name, p in images(testdata, script, suffix):
                content = read(p)
                flags = 0
                if target.endswith("VmdkFuzzTarget.sparse"):
                    if magic(content) in (b"COWD", SESPARSE_MAGIC):
                        flags = VMDK_SPARSE_VIA_DESCRIPTOR
                    elif magic(content) != b"KDMV":
                        continue  # a text descriptor: the descriptor target's
                write(out, target, script + "-" + name, encode(content, flags))
                write(out, target, script + "-" + name + ".check", encode(content, flags | CHECK))


def vmdk_descriptor_seeds(testdata, out):
    """Text descriptors, their extents renamed to the files beside the target's input."""
    import re
    target = "org.vdiskload.format.vmdk.VmdkFuzzTarget.descriptor"
    line = re.compile(rb'^(\s*(?:RW|RDONLY|NOACCESS)\s+)(\d+)(\s+)(\w+)(\s+)"[^"]*"(.*)$', re.M)

    def rename(m):
        kind = m.group(4).upper()
        if kind in (b"SPARSE", b"VMFSSPARSE"):
            return m.group(1) + b"2048" + m.group(3) + b"SPARSE" + m.group(5) + b'"sparse.vmdk"' + m.group(6)
        return m.group(1) + m.group(2) + m.group(3) + m.group(4) + m.group(5) + b'"flat.raw"' + m.group(6)

    for script in ("vmdk", "every-format"):
        for name, p in images(testdata, script, ".vmdk"):
            content = read(p)
            if magic(content) in (b"KDMV", b"COWD") or len(content) > 65536:
                continue
            text = line.sub(rename, content)
            text = re.sub(rb'parentFileNameHint="[^"]*"', b'parentFileNameHint="parent.vmdk"', text)
            write(out, target, script + "-" + name, bytes([0]) + text)


def partition_seeds(testdata, out):
    """Raw disks with GPT and MBR (logical partitions): only the sectors tables live in."""
    target = "org.vdiskload.partition.PartitionTableFuzzTarget.table"

    def table_sector(at, content):
        sector = content[at:at + 512]
        return at < 64 * 512 or at >= len(content) - 64 * 512 or sector[510:512] == b"\x55\xaa"

    for name, p in images(testdata, "disks", ".raw"):
        content = read(p)
        write(out, target, name, encode(content, 0, keep=table_sector))
        write(out, target, name + ".resealed", encode(content, 1, keep=table_sector))


def layout_seeds(out):
    """The schema's examples, their sources renamed to the files beside the target's input."""
    import json
    target = "org.vdiskload.format.layout.LayoutFuzzTarget.layout"
    d = os.path.join(REPO, "disk-json-schema", "examples")
    sources = ["a.raw", "b.qcow2", "c.gz"]
    for name in sorted(os.listdir(d)):
        if not name.endswith(".json"):
            continue
        layout = json.load(open(os.path.join(d, name)))
        for i, part in enumerate(layout.get("partitions", [])):
            if "source" in part:
                part["source"] = sources[i % len(sources)]
                part.pop("filesystem", None)
                if part.get("size") and part["source"] != "a.raw":
                    part.pop("size")
        write(out, target, name, bytes([0]) + json.dumps(layout, indent=1).encode())


def compressed_seeds(testdata, out):
    """A raw and a qcow2 source in each of the five compressions, and a gzipped tar archive."""
    target = "org.vdiskload.format.layout.LayoutFuzzTarget.compressed"
    raw = bytes((i // 512 * 7 + (i & 0xff)) & 0xff for i in range(16384))
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "small.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", small, "64k"], check=True)
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 4k 4k", small], check=True, stdout=subprocess.DEVNULL)
        qcow2 = read(small)
        tree = os.path.join(tmp, "tree")
        os.makedirs(tree)
        with open(os.path.join(tree, "hello.txt"), "w") as f:
            f.write("hello\n")
        tar = os.path.join(tmp, "tree.tar")
        subprocess.run(["tar", "-cf", tar, "-C", tree, "hello.txt"], check=True)
        for label, data in (("raw", raw), ("qcow2", qcow2)):
            write(out, target, label + ".gz", bytes([0]) + gzip.compress(data, mtime=0))
            write(out, target, label + ".xz", bytes([0]) + lzma.compress(data))
            write(out, target, label + ".bz2", bytes([0]) + bz2.compress(data))
            for tool, ext in (("zstd", "zst"), ("lz4", "lz4")):
                r = subprocess.run([tool, "-c", "-q"], input=data, stdout=subprocess.PIPE, check=True)
                write(out, target, label + "." + ext, bytes([0]) + r.stdout)
        write(out, target, "tree.tar.gz", bytes([0]) + gzip.compress(read(tar), mtime=0))


def nbd_seeds(out):
    """Client sessions: old-style EXPORT_NAME, GO with every command, structured replies and block status,
    extended headers, LIST, INFO, meta-context listing, a bad magic."""
    target = "org.vdiskload.nbd.NbdFuzzTarget.client"
    IHAVEOPT = b"IHAVEOPT"

    def opt(code, data=b""):
        return IHAVEOPT + struct.pack(">II", code, len(data)) + data

    def name(n):
        n = n.encode()
        return struct.pack(">I", len(n)) + n

    def go(export, infos=()):
        return opt(7, name(export) + struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos))

    def req(cmd, offset, length, flags=0, cookie=1, payload=b""):
        return struct.pack(">IHHQQI", 0x25609513, flags, cmd, cookie, offset, length) + payload

    def xreq(cmd, offset, length, flags=0, cookie=1, payload=b""):
        return struct.pack(">IHHQQQ", 0x21e41c71, flags, cmd, cookie, offset, length) + payload

    meta = name("disk") + struct.pack(">I", 1) + name("base:allocation")
    flags = struct.pack(">I", 3)
    sessions = {
        "export-name-read": flags + opt(1, b"disk") + req(0, 0, 4096) + req(2, 0, 0),
        "go-every-command": flags + go("disk", (1, 2, 3)) + req(0, 4096, 8192) + req(1, 0, 512, payload=bytes(range(256)) * 2)
            + req(1, 1024, 512, flags=1, payload=b"\xaa" * 512) + req(3, 0, 0) + req(4, 65536, 65536) + req(6, 131072, 4096)
            + req(6, 135168, 4096, flags=0x12) + req(5, 0, 1 << 20) + req(2, 0, 0),
        "structured-block-status": flags + opt(8) + opt(10, meta) + go("disk") + req(7, 0, 1 << 20)
            + req(7, 0, 1 << 20, flags=8) + req(0, 0, 65536, flags=4) + req(2, 0, 0),
        "extended-headers": flags + opt(11) + opt(10, meta) + go("snap") + xreq(1, 0, 4096, flags=0x20, payload=b"\x11" * 4096)
            + xreq(0, 0, 8192) + xreq(7, 0, 1 << 20) + xreq(6, 4096, 4096) + xreq(4, 8192, 4096) + xreq(2, 0, 0),
        "read-only": flags + opt(1, b"ro") + req(0, 0, 65536) + req(1, 0, 512, payload=bytes(512)) + req(2, 0, 0),
        "list-info-abort": flags + opt(3) + opt(6, name("ro") + struct.pack(">H", 0)) + opt(9, name("") + struct.pack(">I", 0)) + opt(2),
        "no-zeroes": struct.pack(">I", 1) + opt(1, b"snap") + req(0, 0, 512),
        "bad-magic": flags + b"IHAVEOPX" + struct.pack(">II", 7, 0),
    }
    for label, data in sessions.items():
        write(out, target, label, data)


def fuse_seeds(out):
    """Requests as the kernel sends them: INIT, LOOKUP, GETATTR, OPEN, READ, WRITE, FALLOCATE, READDIR, STATFS..."""
    target = "org.vdiskload.attach.fuse.FuseFuzzTarget.requests"

    def request(opcode, node, body=b"", unique=1):
        return struct.pack("<IIQQIIII", 40 + len(body), opcode, unique, node, 0, 0, 0, 0) + body

    def read(n):
        return struct.pack("<H", len(n)) + n

    init = request(26, 0, struct.pack("<IIII", 7, 38, 131072, 0x401021))
    reqs = [
        init,
        request(1, 1, b"p1\x00"), request(1, 1, b"disk\x00"), request(1, 1, b"nothing\x00"),
        request(3, 1), request(3, 3), request(14, 3, struct.pack("<II", 2, 0)), request(14, 2, struct.pack("<II", 0, 0)),
        request(15, 3, struct.pack("<QQIIIIQ", 0, 4096, 4096, 0, 0, 0, 0) + bytes(8)),
        request(16, 3, struct.pack("<QQIIIIQ", 0, 8192, 512, 0, 0, 0, 0) + bytes(8) + b"\x42" * 512),
        request(43, 3, struct.pack("<QQQII", 0, 65536, 4096, 3, 0)), request(43, 3, struct.pack("<QQQII", 0, 0, 4096, 0x10, 0)),
        request(27, 1, struct.pack("<II", 0, 0)), request(28, 1, struct.pack("<QQIIIIQ", 0, 0, 4096, 0, 0, 0, 0) + bytes(8)),
        request(17, 1), request(34, 2, struct.pack("<II", 2, 0)), request(20, 3, struct.pack("<QII", 0, 0, 0)),
        request(4, 3, struct.pack("<II", 8, 0) + bytes(8) + struct.pack("<Q", 262144) + bytes(64)),
        request(2, 3, struct.pack("<Q", 1)), request(38, 0),
    ]
    write(out, target, "session", b"".join(read(r) for r in reqs))
    for i, r in enumerate(reqs):
        write(out, target, "request-%02d" % i, read(init) + read(r))


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = args[0]
    testdata = args[args.index("--testdata") + 1] if "--testdata" in args else tempfile.mkdtemp(prefix="vdl-seeds-")
    for s in SCRIPTS:
        d = os.path.join(testdata, s)
        if not os.path.isdir(d) or not os.listdir(d):
            os.makedirs(d, exist_ok=True)
            subprocess.run(["sh", os.path.join(REPO, "testdata", s + ".sh"), d], check=True, stdout=subprocess.DEVNULL)
    image_seeds(testdata, out)
    vmdk_descriptor_seeds(testdata, out)
    partition_seeds(testdata, out)
    layout_seeds(out)
    compressed_seeds(testdata, out)
    nbd_seeds(out)
    fuse_seeds(out)


if __name__ == "__main__":
    main()
