package org.vdiskload.nbd;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The exports one server offers, by name. The empty name selects the first (the default export). */
final class Exports {
    private final Map<String, Export> byName = new LinkedHashMap<>();

    Exports(List<Export> exports) {
        if (exports.isEmpty()) throw new IllegalArgumentException("no exports");
        for (Export e : exports) {
            if (byName.putIfAbsent(e.name(), e) != null) throw new IllegalArgumentException("two exports are named '" + e.name() + "'");
        }
    }

    /** The export a client names, or null. */
    Export find(String name) {
        if (name.isEmpty() && !byName.containsKey("")) return byName.values().iterator().next();
        return byName.get(name);
    }

    Collection<Export> all() {
        return byName.values();
    }
}
