package org.vdiskload.cli;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

/**
 * The JSON the commands print ({@code info}, {@code check}, {@code -l --json}): indented, and pure ASCII — every
 * other character a \\u escape, so text taken from an image (a snapshot name, a backing file name, a VMDK
 * extent's) reaches the terminal as data whatever its bytes, and a JSON reader still gets it exactly.
 */
final class Json {
    private Json() {}

    static ObjectMapper mapper() {
        return JsonMapper.builder().enable(JsonWriteFeature.ESCAPE_NON_ASCII).enable(SerializationFeature.INDENT_OUTPUT).build();
    }
}
