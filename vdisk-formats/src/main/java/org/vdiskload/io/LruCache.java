package org.vdiskload.io;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A bounded least-recently-used cache for metadata tables (qcow2 L2 tables, VMDK grain tables...),
 * keyed by their file offset. Bounded by entry count: callers size it from the table size and a
 * byte budget, so a hostile image cannot make it grow.
 */
public final class LruCache<V> {
    /** Loads the value for a key on a miss. */
    @FunctionalInterface
    public interface Loader<V> {
        V load(long key) throws IOException;
    }

    private final LinkedHashMap<Long, V> map;
    /** Counts puts and invalidations: a load that saw one happen meanwhile may have read an older table. */
    private long changes;

    public LruCache(int maxEntries) {
        if (maxEntries < 1) throw new IllegalArgumentException("maxEntries " + maxEntries);
        this.map = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, V> eldest) {
                return size() > maxEntries;
            }
        };
    }

    /** Entries that fit in {@code budgetBytes} when each is {@code entryBytes}, at least 1. */
    public static int entriesFor(long budgetBytes, long entryBytes) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, budgetBytes / Math.max(1, entryBytes)));
    }

    public V get(long key, Loader<V> loader) throws IOException {
        while (true) {
            long seen;
            synchronized (map) {
                V v = map.get(key);
                if (v != null) return v;
                seen = changes;
            }
            // Load outside the lock: two threads may load the same table; both results are equal, unless
            // the table was put or invalidated meanwhile: then what was put wins, or the load is redone.
            V loaded = loader.load(key);
            synchronized (map) {
                if (changes == seen) {
                    map.put(key, loaded);
                    return loaded;
                }
                V v = map.get(key);
                if (v != null) return v;
            }
        }
    }

    /** {@code value} is now what the file holds at {@code key} (the caller just wrote it). */
    public void put(long key, V value) {
        synchronized (map) {
            map.put(key, value);
            changes++;
        }
    }

    public void invalidate(long key) {
        synchronized (map) {
            map.remove(key);
            changes++;
        }
    }

    public void clear() {
        synchronized (map) {
            map.clear();
            changes++;
        }
    }
}
