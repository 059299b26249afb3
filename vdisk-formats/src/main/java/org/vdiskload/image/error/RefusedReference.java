package org.vdiskload.image.error;

import java.nio.file.Path;

/**
 * A reference an image makes (backing file, extent, parent locator, layout source) that the
 * {@link org.vdiskload.image.ReferencePolicy} does not let it follow. Its message is complete (the image,
 * the reference, where it resolves to, how to allow it): callers pass it on rather than wrap it.
 */
public final class RefusedReference extends ImageException {
    public RefusedReference(Path image, String problem) {
        super(Kind.INVALID, image, NO_OFFSET, null, problem);
    }
}
