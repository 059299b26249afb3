package org.vdiskload.format.layout;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.PathType;
import com.networknt.schema.SchemaValidatorsConfig;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import org.vdiskload.image.Sizes;
import org.vdiskload.image.error.ImageException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;

/**
 * Reads a layout file: JSON (duplicate keys refused), then the schema (disk-json-schema/layout.schema.json,
 * validated by networknt's json-schema-validator), then what a schema cannot say (types per table kind,
 * sector multiples, the GPT entry limit). Every problem is one {@link ImageException} naming the JSON path and line.
 */
final class LayoutParser {
    /** Entries in the GPT this layout writes; also the most partitions a GPT layout may have. */
    static final int GPT_ENTRIES = 128;

    private static final ObjectMapper JSON = JsonMapper.builder().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();
    private static final JsonSchema SCHEMA = loadSchema();

    private final Path file;
    private final JsonLines lines;

    private LayoutParser(Path file, JsonLines lines) {
        this.file = file;
        this.lines = lines;
    }

    private static JsonSchema loadSchema() {
        try (InputStream in = LayoutParser.class.getResourceAsStream("layout.schema.json")) {
            if (in == null) throw new IllegalStateException("layout.schema.json is missing from the classpath");
            SchemaValidatorsConfig config = SchemaValidatorsConfig.builder().pathType(PathType.JSON_PATH).build();
            return JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V202012).getSchema(in, config);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read layout.schema.json", e);
        }
    }

    /** A checked layout and where its values are, for later messages. */
    record Parsed(LayoutSpec spec, JsonLines lines) {}

    static Parsed parse(Path file, byte[] content) throws ImageException {
        JsonNode root;
        try {
            root = JSON.readTree(content);
        } catch (JsonProcessingException e) {
            throw malformed(file, e);
        } catch (IOException e) {
            throw ImageException.invalid(file, "cannot read the layout: " + e.getMessage());
        }
        if (root == null) throw ImageException.invalid(file, "$: malformed JSON: the file is empty");
        LayoutParser p;
        try {
            p = new LayoutParser(file, new JsonLines(content));
        } catch (IOException e) {
            throw ImageException.invalid(file, "cannot read the layout: " + e.getMessage());
        }
        p.validate(root);
        return new Parsed(p.spec(root, content), p.lines);
    }

    private static ImageException malformed(Path file, JsonProcessingException e) {
        String where = "$";
        if (e.getProcessor() instanceof JsonParser parser) where = JsonLines.pathOf(parser.getParsingContext().pathAsPointer().toString());
        String line = e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")";
        String problem = e.getOriginalMessage().lines().findFirst().orElse("");
        return ImageException.invalid(file, where + line + ": malformed JSON: " + problem);
    }

    private ImageException error(String path, String problem) {
        return ImageException.invalid(file, lines.locate(path) + ": " + problem);
    }

    /** The schema's verdict: the problems at the first offending value (in document order), as one line. */
    private void validate(JsonNode root) throws ImageException {
        Set<ValidationMessage> errors = SCHEMA.validate(root);
        if (errors.isEmpty()) return;
        String first = errors.stream().map(m -> m.getInstanceLocation().toString())
                .min(Comparator.comparingInt(this::lineOf).thenComparing(Comparator.comparingInt(String::length).reversed()))
                .orElseThrow();
        String problems = errors.stream().filter(m -> m.getInstanceLocation().toString().equals(first))
                .map(m -> strip(m.getMessage(), first)).distinct().sorted().collect(Collectors.joining("; "));
        throw error(first, problems);
    }

    private int lineOf(String path) {
        String s = lines.locate(path);
        int i = s.lastIndexOf("(line ");
        return i < 0 ? 0 : Integer.parseInt(s.substring(i + 6, s.length() - 1));
    }

    private static String strip(String message, String path) {
        return message.startsWith(path + ": ") ? message.substring(path.length() + 2) : message;
    }

    private LayoutSpec spec(JsonNode root, byte[] content) throws ImageException {
        LayoutSpec.Table table = root.get("table").asText().equals("gpt") ? LayoutSpec.Table.GPT : LayoutSpec.Table.MBR;
        int sectorSize = root.path("sector_size").asInt(512);
        long alignment = root.has("alignment") ? size(root, "$", "alignment") : 1 << 20;
        if (alignment == 0 || alignment % sectorSize != 0) {
            throw error("$.alignment", "must be a positive multiple of the sector size (" + sectorSize + ")");
        }
        Long diskSize = root.has("size") ? size(root, "$", "size") : null;
        if (diskSize != null && diskSize % sectorSize != 0) throw error("$.size", "not a multiple of the sector size (" + sectorSize + ")");
        byte[] digest = sha256(content);
        if (table == LayoutSpec.Table.MBR && root.has("disk_guid")) throw error("$.disk_guid", "only a GPT has a disk GUID (use mbr_signature)");
        if (table == LayoutSpec.Table.GPT && root.has("mbr_signature")) throw error("$.mbr_signature", "only an MBR has a disk signature (use disk_guid)");
        UUID diskGuid = root.has("disk_guid") ? UUID.fromString(root.get("disk_guid").asText()) : UUID.nameUUIDFromBytes(digest);
        int signature = root.has("mbr_signature") ? (int) Long.parseLong(root.get("mbr_signature").asText().substring(2), 16)
                : ByteBuffer.wrap(digest).getInt();

        JsonNode parts = root.get("partitions");
        if (table == LayoutSpec.Table.GPT && parts.size() > GPT_ENTRIES) {
            throw error("$.partitions[" + GPT_ENTRIES + "]", "a GPT holds at most " + GPT_ENTRIES + " partitions; this layout has " + parts.size());
        }
        List<LayoutSpec.Part> list = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) list.add(part(parts.get(i), "$.partitions[" + i + "]", table, sectorSize, diskGuid, i + 1));
        return new LayoutSpec(table, diskSize, sectorSize, alignment, diskGuid, signature, List.copyOf(list));
    }

    private LayoutSpec.Part part(JsonNode n, String path, LayoutSpec.Table table, int sectorSize, UUID diskGuid, int number)
            throws ImageException {
        String type = n.has("type") ? n.get("type").asText() : PartitionTypes.DEFAULT;
        UUID gptType = null;
        int mbrType = -1;
        if (table == LayoutSpec.Table.GPT) {
            gptType = PartitionTypes.gpt(type);
            if (gptType == null) throw error(path + ".type", "unknown partition type '" + type + "' for a GPT (a GUID, or one of: " + PartitionTypes.names() + ")");
        } else {
            mbrType = PartitionTypes.mbr(type);
            if (mbrType < 0) throw error(path + ".type", "unknown partition type '" + type + "' for an MBR (a byte such as 0x83, or one of: "
                    + PartitionTypes.names() + " but bios-boot)");
            for (String gptOnly : List.of("name", "guid", "legacy-bios-bootable")) {
                if (n.has(gptOnly)) throw error(path + "." + gptOnly, "only GPT partitions have a " + gptOnly);
            }
        }
        if (n.has("filesystem") && !n.has("source")) {
            throw error(path + ".filesystem", "only a directory or tar source is built into a file system; this partition has no source");
        }
        Long size = n.has("size") ? size(n, path, "size") : null;
        if (size != null && size % sectorSize != 0) throw error(path + ".size", "not a multiple of the sector size (" + sectorSize + ")");
        Long start = n.has("start") ? size(n, path, "start") : null;
        if (start != null && start % sectorSize != 0) throw error(path + ".start", "not a multiple of the sector size (" + sectorSize + ")");
        UUID guid = n.has("guid") ? UUID.fromString(n.get("guid").asText())
                : UUID.nameUUIDFromBytes((diskGuid + "/partition/" + number).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        return new LayoutSpec.Part(path, n.has("source") ? n.get("source").asText() : null, size, start, gptType, mbrType,
                n.path("name").asText(""), guid, n.path("bootable").asBoolean(false),
                n.path("legacy-bios-bootable").asBoolean(false), n.path("read-only").asBoolean(false),
                n.has("filesystem") ? FileSystemKind.of(n.get("filesystem").asText()) : null);
    }

    private long size(JsonNode parent, String parentPath, String key) throws ImageException {
        JsonNode v = parent.get(key);
        if (v.isIntegralNumber()) {
            if (!v.canConvertToLong()) throw error(parentPath + "." + key, "too large");
            return v.asLong();
        }
        try {
            return Sizes.parse(v.asText());
        } catch (IllegalArgumentException e) {
            throw error(parentPath + "." + key, e.getMessage());
        }
    }

    static byte[] sha256(byte[] content) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(content);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
