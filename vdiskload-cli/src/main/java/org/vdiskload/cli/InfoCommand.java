package org.vdiskload.cli;

import org.vdiskload.image.DiskImage;
import org.vdiskload.image.ImageLayer;
import org.vdiskload.image.LayerInfo;
import org.vdiskload.image.SnapshotInfo;
import org.vdiskload.image.OpenOptions;
import org.vdiskload.image.ReferencePolicy;
import org.vdiskload.io.Holes;
import org.vdiskload.io.ImageFile;
import org.vdiskload.text.Printable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code vdiskload info}: qemu-img info's fields and JSON shape. */
@Command(name = "info", description = "Show an image's format, sizes, backing chain and snapshots.")
final class InfoCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ImageOptions image;

    @Option(names = "--output", paramLabel = "human|json", defaultValue = "human", description = "Output format.")
    OutputFormat output;

    @Option(names = "--backing-chain", description = "Show every image of the backing chain.")
    boolean backingChain;

    @Parameters(paramLabel = "FILE")
    Path file;

    @Override
    public Integer call() throws IOException {
        // Like qemu-img info, the backing chain is opened only when it is asked for.
        OpenOptions options = image.toOpenOptions().withBacking(backingChain);
        try (DiskImage disk = org.vdiskload.image.Images.open(file, options)) {
            List<Map<String, Object>> infos = new ArrayList<>();
            List<ImageLayer> layers = disk.layers();
            for (int i = 0; i < (backingChain ? layers.size() : 1); i++) infos.add(describe(layers.get(i), options.refs()));
            PrintWriter out = Main.out(spec);
            if (output == OutputFormat.json) {
                out.println(Json.mapper().writeValueAsString(backingChain ? infos : infos.get(0)));
            } else {
                for (int i = 0; i < infos.size(); i++) {
                    if (i > 0) out.println();
                    printHuman(out, infos.get(i));
                }
            }
            out.flush();
        }
        return 0;
    }

    /**
     * The qemu-img info JSON object for one layer; a backing file {@code refs} would not let the chain follow
     * is marked ({@code backing-filename-refused}, why), found without opening it.
     */
    private static Map<String, Object> describe(ImageLayer layer, ReferencePolicy refs) throws IOException {
        LayerInfo info = layer.info();
        Map<String, Object> m = new LinkedHashMap<>();
        if (!info.snapshots().isEmpty()) m.put("snapshots", snapshots(info.snapshots()));
        m.put("virtual-size", info.virtualSize());
        m.put("filename", layer.file().path().toString());
        if (info.clusterSize() != null) m.put("cluster-size", info.clusterSize());
        m.put("format", info.format());
        m.put("actual-size", actualSize(layer));
        if (info.formatSpecific() != null && !info.formatSpecific().isEmpty()) {
            m.put("format-specific", Map.of("type", info.format(), "data", info.formatSpecific()));
        }
        if (layer.backing().isPresent()) {
            ReferencePolicy.Judged backing = refs.judge(layer.file().path(), layer.backing().get());
            m.put("backing-filename", ReferencePolicy.printable(backing.name()));
            m.put("full-backing-filename", ReferencePolicy.printable(backing.path().toString()));
            if (layer.backing().get().format() != null) m.put("backing-filename-format", layer.backing().get().format());
            if (backing.refusal() != null) m.put("backing-filename-refused", backing.refusal());
        }
        if (info.dirty() != null) m.put("dirty-flag", info.dirty());
        return m;
    }

    private static long actualSize(ImageLayer layer) throws IOException {
        long total = 0;
        for (ImageFile f : layer.files()) total += Holes.dataBytes(f.path(), f.size());
        return total;
    }

    private static List<Map<String, Object>> snapshots(List<SnapshotInfo> list) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (SnapshotInfo s : list) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("icount", s.icount());
            m.put("vm-clock-nsec", s.vmClockNsec());
            m.put("name", s.name());
            m.put("date-sec", s.dateSec());
            m.put("date-nsec", s.dateNsec());
            m.put("vm-clock-sec", s.vmClockNsec() / 1_000_000_000L);
            m.put("id", s.id());
            m.put("vm-state-size", s.vmStateSize());
            out.add(m);
        }
        return out;
    }

    /** A value as the human output shows it: text from the image (or a file name) with control characters escaped. */
    private static String text(Object v) {
        return Printable.of(String.valueOf(v));
    }

    @SuppressWarnings("unchecked")
    private static void printHuman(PrintWriter out, Map<String, Object> m) {
        out.println("image: " + text(m.get("filename")));
        out.println("file format: " + text(m.get("format")));
        long vsize = (Long) m.get("virtual-size");
        out.println("virtual size: " + Sizes.human(vsize) + " (" + vsize + " bytes)");
        out.println("disk size: " + Sizes.human((Long) m.get("actual-size")));
        if (m.containsKey("cluster-size")) out.println("cluster_size: " + m.get("cluster-size"));
        if (m.containsKey("backing-filename")) {
            out.println("backing file: " + text(m.get("backing-filename"))
                    + (m.get("backing-filename").equals(m.get("full-backing-filename")) ? "" : " (actual path: " + text(m.get("full-backing-filename")) + ")"));
            if (m.containsKey("backing-filename-format")) out.println("backing file format: " + text(m.get("backing-filename-format")));
            if (m.containsKey("backing-filename-refused")) out.println("backing file refused: " + text(m.get("backing-filename-refused")));
        }
        if (m.containsKey("snapshots")) {
            out.println("Snapshot list:");
            out.printf("%-10s%-17s%11s%20s%15s%n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK");
            DateTimeFormatter date = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());
            for (Map<String, Object> s : (List<Map<String, Object>>) m.get("snapshots")) {
                long clock = (Long) s.get("vm-clock-nsec");
                String clk = String.format("%04d:%02d:%02d.%03d", clock / 3_600_000_000_000L, clock / 60_000_000_000L % 60,
                        clock / 1_000_000_000L % 60, clock / 1_000_000 % 1000);
                out.printf("%-10s%-17s%11s%20s%15s%n", text(s.get("id")), text(s.get("name")), Sizes.human((Long) s.get("vm-state-size")),
                        date.format(Instant.ofEpochSecond((Long) s.get("date-sec"))), clk);
            }
        }
        if (m.containsKey("dirty-flag") && Boolean.TRUE.equals(m.get("dirty-flag"))) out.println("dirty flag: true");
        if (m.containsKey("format-specific")) {
            out.println("Format specific information:");
            printTree(out, (Map<String, Object>) ((Map<String, Object>) m.get("format-specific")).get("data"), "    ");
        }
    }

    @SuppressWarnings("unchecked")
    private static void printTree(PrintWriter out, Map<String, Object> data, String indent) {
        for (Map.Entry<String, Object> e : data.entrySet()) {
            String key = text(e.getKey().replace('-', ' '));
            Object v = e.getValue();
            if (v instanceof Map<?, ?> sub) {
                out.println(indent + key + ":");
                printTree(out, (Map<String, Object>) sub, indent + "    ");
            } else if (v instanceof List<?> list) {
                out.println(indent + key + ":");
                int i = 0;
                for (Object item : list) {
                    if (item instanceof Map<?, ?> sub) {
                        out.println(indent + "    [" + i++ + "]:");
                        printTree(out, (Map<String, Object>) sub, indent + "        ");
                    } else {
                        out.println(indent + "    [" + i++ + "]: " + text(item));
                    }
                }
            } else {
                out.println(indent + key + ": " + text(v));
            }
        }
    }
}
