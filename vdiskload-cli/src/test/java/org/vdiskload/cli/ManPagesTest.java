package org.vdiskload.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every command a user can run has a man page, and its page names each of its options. */
class ManPagesTest {
    @Test
    void everyCommandAndOptionHasItsManPageEntry(@TempDir Path dir) throws IOException {
        assertEquals(0, ManPages.write(dir.toFile()));
        List<String> missing = new ArrayList<>();
        CommandSpec top = Main.commandLine().getCommandSpec();
        List<CommandSpec> commands = new ArrayList<>(List.of(top));
        top.subcommands().values().forEach(sub -> commands.add(sub.getCommandSpec()));
        for (CommandSpec command : commands) {
            if (command.usageMessage().hidden()) continue;
            Path page = dir.resolve(command.qualifiedName("-") + ".adoc");
            if (!Files.exists(page)) {
                missing.add("no page " + page.getFileName());
                continue;
            }
            String text = Files.readString(page);
            if (text.lines().anyMatch(line -> line.endsWith(", ::"))) missing.add(page.getFileName() + " has an option with an empty name");
            for (OptionSpec option : command.options()) {
                if (option.hidden()) continue;
                for (String name : option.names()) {
                    // the generator writes "*-r*, *--read-only*" (bold names)
                    if (!text.contains("*" + name + "*")) missing.add(page.getFileName() + " lacks " + name);
                }
            }
        }
        assertTrue(missing.isEmpty(), String.join("\n", missing));
        assertTrue(commands.size() > 10, "the whole command tree: " + commands.size());
    }

    @Test
    void hiddenCommandsHaveNoPage(@TempDir Path dir) throws IOException {
        ManPages.write(dir.toFile());
        assertTrue(Files.exists(dir.resolve("vdiskload-info.adoc")));
        assertTrue(!Files.exists(dir.resolve("vdiskload-attach-daemon.adoc")), "the serving process is not for users to run");
    }
}
