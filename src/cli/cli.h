/* cli.h - entry points of the `ds4` subcommands. Each takes argv starting at
 * the subcommand name and returns the process exit status. */
#ifndef DS4_CLI_H
#define DS4_CLI_H

int ds4_cmd_inspect(int argc, char **argv);
int ds4_cmd_golden(int argc, char **argv);
int ds4_cmd_tokenize(int argc, char **argv);
int ds4_cmd_render(int argc, char **argv);
int ds4_cmd_chat(int argc, char **argv); /* also `ds4` with no subcommand or an option first */

#endif
