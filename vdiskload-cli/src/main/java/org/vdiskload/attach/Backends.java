package org.vdiskload.attach;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The backends an installation has, in the order {@code --backend auto} prefers them: auto takes the
 * first whose {@link Backend.Kind#available} says the kernel can run it. The list itself is made in one
 * place above this package (the command line's), so that nothing here names an implementation.
 */
public final class Backends {
    public static final String AUTO = "auto";

    private final List<Backend.Kind> preference;

    public Backends(List<Backend.Kind> preference) {
        Set<String> names = new HashSet<>();
        for (Backend.Kind k : preference) {
            if (k.name().equals(AUTO) || !names.add(k.name())) throw new IllegalArgumentException("backend name '" + k.name() + "' taken twice");
        }
        if (preference.isEmpty()) throw new IllegalArgumentException("no backends");
        this.preference = List.copyOf(preference);
    }

    /** Every backend's name, in preference order. */
    public List<String> names() {
        List<String> names = new ArrayList<>();
        for (Backend.Kind k : preference) names.add(k.name());
        return names;
    }

    /** The backend {@code name} asks for ({@code --backend}): {@link #AUTO} picks the first available one. */
    public Backend.Kind choose(String name) throws IOException {
        if (!AUTO.equals(name)) return named(name);
        for (Backend.Kind k : preference) if (k.available()) return k;
        throw new IOException("no backend can attach images on this system (tried " + String.join(", ", names()) + ")");
    }

    /**
     * Removes what {@code a}'s serving process, which is gone (killed, or failed to start), left in the
     * kernel (its backend's {@link Backend.Kind#releaseOrphan}), and the /dev names, also when that fails.
     */
    public void releaseOrphan(Attachment a, StateDir state) throws IOException {
        try {
            named(a.backend()).releaseOrphan(a, state);
        } finally {
            DeviceLinks.SYSTEM.unlink(a.name());
        }
    }

    /** The backend named {@code name} (as an attachment's record names it). */
    public Backend.Kind named(String name) throws IOException {
        for (Backend.Kind k : preference) if (k.name().equals(name)) return k;
        throw new IOException("no backend named '" + name + "' (built: " + String.join(", ", names()) + ")");
    }
}
