#!/usr/bin/env python3
"""Header patches for qcow2 variants qemu-img 7.2 will not make.

  qcow2_patch.py drop-backing-format FILE   remove the backing-format header extension
                                            (an old-style image: the backing format is not recorded)
  qcow2_patch.py set-incompat FILE BIT      set an incompatible-feature bit (v3 images)
  qcow2_patch.py set-crypt FILE METHOD      set crypt_method (1 = legacy AES)
"""
import struct
import sys

BACKING_FORMAT = 0xE2792ACA


def drop_backing_format(path):
    with open(path, "r+b") as f:
        head = f.read(112)
        version, = struct.unpack(">I", head[4:8])
        cluster_bits, = struct.unpack(">I", head[20:24])
        start = 72 if version == 2 else struct.unpack(">I", head[100:104])[0]
        f.seek(0)
        cluster = f.read(1 << cluster_bits)
        pos, kept = start, []
        while True:
            typ, length = struct.unpack(">II", cluster[pos:pos + 8])
            if typ == 0:
                break
            data = cluster[pos + 8:pos + 8 + length]
            if typ != BACKING_FORMAT:
                kept.append(struct.pack(">II", typ, length) + data + b"\0" * (-length % 8))
            pos += 8 + length + (-length % 8)
        end = pos + 8
        blob = b"".join(kept) + b"\0" * 8
        f.seek(start)
        f.write(blob + b"\0" * (end - start - len(blob)))


def set_incompat(path, bit):
    with open(path, "r+b") as f:
        f.seek(72)
        value, = struct.unpack(">Q", f.read(8))
        f.seek(72)
        f.write(struct.pack(">Q", value | (1 << bit)))


def set_crypt(path, method):
    with open(path, "r+b") as f:
        f.seek(32)
        f.write(struct.pack(">I", method))


if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "drop-backing-format":
        drop_backing_format(path)
    elif cmd == "set-incompat":
        set_incompat(path, int(sys.argv[3]))
    elif cmd == "set-crypt":
        set_crypt(path, int(sys.argv[3]))
    else:
        sys.exit("unknown command " + cmd)
