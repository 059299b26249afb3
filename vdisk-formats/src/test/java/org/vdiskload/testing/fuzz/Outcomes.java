package org.vdiskload.testing.fuzz;

import org.vdiskload.image.error.ImageException;
import org.vdiskload.text.Printable;

/**
 * The one way a fuzz target may end other than normally: an {@link ImageException} with a kind, a file, and a
 * message a user can be shown as one line. A bug the library turned into an ImageException (an unexpected
 * RuntimeException wrapped as "malformed image") is still a finding, and so is a plain IOException, an
 * Error, or a message carrying raw control bytes from the image.
 */
public final class Outcomes {
    /** With -Dfuzz.verbose=true (as {@link Replay} takes it), every ImageException an input ends in is printed. */
    private static final boolean VERBOSE = Boolean.getBoolean("fuzz.verbose");

    private Outcomes() {}

    /** Something the target runs, which may throw anything. */
    @FunctionalInterface
    public interface Body {
        void run() throws Exception;
    }

    /** Runs {@code body}; returns the ImageException it ended with (null if none); throws a {@link Finding} for anything else. */
    public static ImageException expect(Body body) {
        try {
            body.run();
            return null;
        } catch (ImageException e) {
            requireClean(e);
            if (VERBOSE) System.err.println("  ImageException " + e.kind() + ": " + e.getMessage());
            return e;
        } catch (Finding f) {
            throw f;
        } catch (Throwable t) {
            throw new Finding("not an ImageException: " + t, t);
        }
    }

    /** Checks that an ImageException is one a user may be shown: a kind, a file, one printable line, no bug beneath. */
    public static void requireClean(ImageException e) {
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            if (c instanceof RuntimeException || c instanceof Error) {
                throw new Finding("a bug surfaced as an ImageException: " + e.getMessage(), c);
            }
        }
        if (e.kind() == null) throw new Finding("ImageException without a kind: " + e.getMessage(), e);
        if (e.path() == null) throw new Finding("ImageException naming no file: " + e.getMessage(), e);
        String m = e.getMessage();
        for (int i = 0; i < m.length(); i++) {
            if (!Printable.safe(m, i)) {
                throw new Finding("an unprintable character U+" + String.format("%04X", (int) m.charAt(i)) + " at " + i
                        + " of the message: " + Printable.of(m), e);
            }
        }
    }
}
