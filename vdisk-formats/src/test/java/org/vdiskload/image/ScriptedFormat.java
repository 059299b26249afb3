package org.vdiskload.image;

import org.vdiskload.io.ImageFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A test-only format whose header is text, to test the chain logic apart from any real format:
 * <pre>
 * VDLTEST
 * size=N
 * backing=NAME            (optional; more than one: names tried in turn, as a VHD's parent locators)
 * backing-format=FMT      (optional)
 * data=START:LENGTH:FILEOFFSET   (any number: DATA runs stored in this file)
 * zero=START:LENGTH              (any number: ZERO runs)
 * encoded=START:LENGTH:BYTE      (any number: ENCODED runs that decode to BYTE repeated)
 * </pre>
 * Everything else is UNALLOCATED. The header ends at the first empty line and must fit in 4 KiB.
 */
public final class ScriptedFormat implements ImageFormat {
    static final String MAGIC_LINE = "VDLTEST\n";

    @Override
    public String name() {
        return "vdltest";
    }

    @Override
    public int probe(ProbeData data) {
        return data.headStartsWith(MAGIC_LINE.getBytes(StandardCharsets.US_ASCII)) ? MAGIC : 0;
    }

    @Override
    public ImageLayer open(ImageFile file, OpenContext context) throws IOException {
        ByteBuffer head = file.readStruct(0, Math.min(4096, file.size()), ByteOrder.LITTLE_ENDIAN, "header");
        String text = StandardCharsets.US_ASCII.decode(head).toString();
        text = text.substring(0, Math.max(0, text.indexOf("\n\n")) + 1);
        long size = 0;
        List<String> backing = new ArrayList<>();
        String backingFormat = null;
        List<long[]> runs = new ArrayList<>();
        for (String line : text.split("\n")) {
            String[] kv = line.split("=", 2);
            if (kv.length < 2) continue;
            String[] v = kv[1].split(":");
            switch (kv[0]) {
                case "size" -> size = Long.parseLong(kv[1]);
                case "backing" -> backing.add(kv[1]);
                case "backing-format" -> backingFormat = kv[1];
                case "data" -> runs.add(new long[] {0, Long.parseLong(v[0]), Long.parseLong(v[1]), Long.parseLong(v[2])});
                case "zero" -> runs.add(new long[] {1, Long.parseLong(v[0]), Long.parseLong(v[1]), 0});
                case "encoded" -> runs.add(new long[] {2, Long.parseLong(v[0]), Long.parseLong(v[1]), Long.parseLong(v[2])});
                default -> { }
            }
        }
        return new Layer(file, size, backing.isEmpty() ? null : new BackingRef(backing, backingFormat), runs);
    }

    private record Layer(ImageFile file, long size, BackingRef backingRef, List<long[]> runs) implements ImageLayer {
        @Override
        public String formatName() {
            return "vdltest";
        }

        @Override
        public LayerRun map(long pos, long maxLength) {
            long nextStart = pos + maxLength;
            for (long[] r : runs) {
                long start = r[1];
                long end = start + r[2];
                if (pos >= start && pos < end) {
                    long n = Math.min(maxLength, end - pos);
                    return switch ((int) r[0]) {
                        case 0 -> LayerRun.data(n, file, r[3] + (pos - start));
                        case 1 -> LayerRun.zero(n);
                        default -> LayerRun.encoded(n);
                    };
                }
                if (start > pos) nextStart = Math.min(nextStart, start);
            }
            return LayerRun.unallocated(nextStart - pos);
        }

        @Override
        public void readEncoded(ByteBuffer dst, long pos) {
            for (long[] r : runs) {
                if (r[0] == 2 && pos >= r[1] && pos < r[1] + r[2]) {
                    while (dst.hasRemaining()) dst.put((byte) r[3]);
                    return;
                }
            }
            throw new AssertionError("readEncoded outside an encoded run at " + pos);
        }

        @Override
        public Optional<BackingRef> backing() {
            return Optional.ofNullable(backingRef);
        }

        @Override
        public LayerInfo info() {
            return LayerInfo.basic("vdltest", size);
        }

        @Override
        public void close() throws IOException {
            file.close();
        }
    }
}
