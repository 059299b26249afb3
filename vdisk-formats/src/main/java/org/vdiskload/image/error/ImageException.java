package org.vdiskload.image.error;

import org.vdiskload.sys.CarriesErrno;
import org.vdiskload.sys.Errno;
import org.vdiskload.text.Printable;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The one exception family for image problems. It carries what a user needs in a one-line message
 * (the file, and where possible the offset and the on-disk field) and a {@link Kind} callers can act on,
 * which is also what a server answers ({@link #errno}). The message is always one printable line: the path,
 * field and problem often hold text from an image (a descriptor line, an extent's or a backing file's name),
 * and their control characters are escaped ({@link Printable}) whatever the caller passed.
 */
public class ImageException extends IOException implements CarriesErrno {

    public enum Kind {
        /** The request or the user's input is wrong: bad option, out-of-range access, not a regular file. */
        INVALID,
        /** The image contradicts its own format: bad magic, offsets past EOF, overlapping tables. */
        CORRUPT,
        /** A valid image uses something this library does not implement (encryption, unknown feature bits). */
        UNSUPPORTED,
        /** The image, or the part of it written to, takes no writes (a layout's compressed source, its partition table). */
        READ_ONLY,
        /** The operating system failed us. */
        IO
    }

    public static final long NO_OFFSET = -1;

    private final Kind kind;
    private final Path path;
    private final long offset;
    private final String field;
    private final String problem;

    public ImageException(Kind kind, Path path, long offset, String field, String problem) {
        this(kind, path, offset, field, problem, null);
    }

    public ImageException(Kind kind, Path path, long offset, String field, String problem, Throwable cause) {
        super(compose(path, offset, field, problem), cause);
        this.kind = kind;
        this.path = path;
        this.offset = offset;
        this.field = field;
        this.problem = problem;
    }

    public static ImageException corrupt(Path path, long offset, String field, String problem) {
        return new ImageException(Kind.CORRUPT, path, offset, field, problem);
    }

    public static ImageException unsupported(Path path, String problem) {
        return new ImageException(Kind.UNSUPPORTED, path, NO_OFFSET, null, problem);
    }

    public static ImageException invalid(Path path, String problem) {
        return new ImageException(Kind.INVALID, path, NO_OFFSET, null, problem);
    }

    public static ImageException readOnly(Path path, String problem) {
        return new ImageException(Kind.READ_ONLY, path, NO_OFFSET, null, problem);
    }

    private static String compose(Path path, long offset, String field, String problem) {
        StringBuilder sb = new StringBuilder();
        if (path != null) sb.append(path).append(": ");
        sb.append(problem);
        if (field != null && offset >= 0) sb.append(" (").append(field).append(" at offset ").append(offset).append(')');
        else if (field != null) sb.append(" (").append(field).append(')');
        else if (offset >= 0) sb.append(" (at offset ").append(offset).append(')');
        return Printable.of(sb.toString());
    }

    public Kind kind() { return kind; }
    public Path path() { return path; }
    /** File offset of the offending structure, or {@link #NO_OFFSET}. */
    public long offset() { return offset; }
    /** Name of the on-disk field, or null. */
    public String field() { return field; }
    /** The problem alone, without path and location. */
    public String problem() { return problem; }

    /**
     * What a server answers for this failure: EINVAL, EIO for a corrupt image (as qemu), EOPNOTSUPP,
     * EROFS; for the operating system's failure 0, as its cause knows ({@link Errno#of}).
     */
    @Override
    public int errno() {
        return switch (kind) {
            case INVALID -> Errno.EINVAL;
            case CORRUPT -> Errno.EIO;
            case UNSUPPORTED -> Errno.EOPNOTSUPP;
            case READ_ONLY -> Errno.EROFS;
            case IO -> 0;
        };
    }
}
