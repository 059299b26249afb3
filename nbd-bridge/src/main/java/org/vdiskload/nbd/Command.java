package org.vdiskload.nbd;

/**
 * The transmission-phase commands this server knows, with what the validator needs to know about each:
 * whether it changes the export, whether offset and length address the export, and which command
 * flags the protocol documents for it (before negotiation narrows them down).
 */
enum Command {
    READ(0, false, true, Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_DF),
    WRITE(1, true, true, Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_PAYLOAD_LEN),
    DISC(2, false, false, 0),
    FLUSH(3, false, false, Nbd.CMD_FLAG_FUA),
    TRIM(4, true, true, Nbd.CMD_FLAG_FUA),
    CACHE(5, false, true, Nbd.CMD_FLAG_FUA),
    WRITE_ZEROES(6, true, true, Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_NO_HOLE | Nbd.CMD_FLAG_FAST_ZERO),
    BLOCK_STATUS(7, false, true, Nbd.CMD_FLAG_FUA | Nbd.CMD_FLAG_REQ_ONE);

    private static final Command[] BY_CODE = new Command[8];

    static {
        for (Command c : values()) BY_CODE[c.code] = c;
    }

    final int code;
    /** Changes the export: refused with EPERM on a read-only export. */
    final boolean writes;
    /** Offset and length name a range of the export (checked for bounds and alignment). */
    final boolean ranged;
    /** The command flags the protocol documents for this command. */
    final int documentedFlags;

    Command(int code, boolean writes, boolean ranged, int documentedFlags) {
        this.code = code;
        this.writes = writes;
        this.ranged = ranged;
        this.documentedFlags = documentedFlags;
    }

    /** The command with this type code, or null for one this server does not know. */
    static Command of(int type) {
        return type >= 0 && type < BY_CODE.length ? BY_CODE[type] : null;
    }
}
