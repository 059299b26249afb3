package org.vdiskload.format.layout;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * The line each value of a JSON document starts on, by JSON path ("$.partitions[1].size"), so messages
 * about a value can say where it is. Jackson's tree has no locations; its streaming parser has.
 */
final class JsonLines {
    private final Map<String, Integer> lines = new HashMap<>();

    /** Call only on a document that already parsed. */
    JsonLines(byte[] json) throws IOException {
        try (JsonParser p = new JsonFactory().createParser(json)) {
            if (p.nextToken() != null) walk(p, "$");
        }
    }

    private void walk(JsonParser p, String path) throws IOException {
        lines.put(path, p.currentTokenLocation().getLineNr());
        if (p.currentToken() == JsonToken.START_OBJECT) {
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                p.nextToken();
                walk(p, path + "." + name);
            }
        } else if (p.currentToken() == JsonToken.START_ARRAY) {
            int i = 0;
            while (p.nextToken() != JsonToken.END_ARRAY) walk(p, path + "[" + i++ + "]");
        }
    }

    /** "$.a[1].b (line 12)"; a path that is not in the document (a missing key) takes its nearest parent's line. */
    String locate(String path) {
        for (String p = path; !p.isEmpty(); p = parent(p)) {
            Integer line = lines.get(p);
            if (line != null) return path + " (line " + line + ")";
        }
        return path;
    }

    private static String parent(String path) {
        int cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
        return cut <= 0 ? "" : path.substring(0, cut);
    }

    /** A JSON pointer ("/partitions/1/size") as a JSON path ("$.partitions[1].size"). */
    static String pathOf(String pointer) {
        StringBuilder sb = new StringBuilder("$");
        if (pointer == null || pointer.isEmpty()) return sb.toString();
        for (String seg : pointer.substring(1).split("/", -1)) {
            String s = seg.replace("~1", "/").replace("~0", "~");
            if (s.matches("[0-9]+")) sb.append('[').append(s).append(']');
            else sb.append('.').append(s);
        }
        return sb.toString();
    }
}
