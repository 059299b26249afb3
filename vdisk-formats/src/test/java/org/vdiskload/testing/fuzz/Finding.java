package org.vdiskload.testing.fuzz;

/**
 * What a fuzz target throws when the code under test broke its contract: anything but an
 * {@link org.vdiskload.image.error.ImageException} escaping, a wrong byte, a bad extent, an allocation past
 * the stated bound. Jazzer reports any throwable as a finding; this one says which rule was broken.
 */
public class Finding extends AssertionError {
    public Finding(String message) {
        super(message);
    }

    public Finding(String message, Throwable cause) {
        super(message, cause);
    }
}
