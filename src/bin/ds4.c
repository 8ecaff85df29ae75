/* ds4.c - the `ds4` command: a table of subcommands, each implemented by the
 * module that owns it (src/cli/cmd_*.c). `ds4 SUBCOMMAND --help` for details. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} cmds[] = {
    {"inspect", ds4_cmd_inspect, "inspect FILE.gguf: metadata, tensors, and whether it is a valid model"},
    {"golden", ds4_cmd_golden, "golden -m MODEL --like REF -o OUT: recompute a DS4GOLD1 golden"},
    {"tokenize", ds4_cmd_tokenize, "tokenize -m MODEL [--special] < text: token ids of stdin"},
    {"render", ds4_cmd_render, "render --api API [-m MODEL] [--ids] < body.json: the prompt the server would feed"},
    {"chat", ds4_cmd_chat, "chat [OPTIONS]: chat with the model (the default: `ds4 [OPTIONS]`, `ds4 -p PROMPT`)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: ds4 [COMMAND] [ARGS]   (no command: chat, options below)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        fputc('\n', stdout);
        return ds4_cmd_chat(2, (char *[]){"chat", "--help", NULL});
    }
    if (argc < 2 || argv[1][0] == '-') return ds4_cmd_chat(argc, argv); /* `ds4`, `ds4 -p ...` */
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ds4: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
