/*
 * queue - `tern queue ...`: list, show and steer the queue (docs/queue-tools.md).
 *
 * Called from tools/tern.c with argv[0] = "queue".  Returns the exit status:
 * 0 ok, 1 error (e.g. an unknown queue ID), 2 usage.
 */
#ifndef TERN_TOOLS_QUEUE_H
#define TERN_TOOLS_QUEUE_H

/* tern_queue_main - run one queue subcommand; config_dir_arg from -c or NULL */
int tern_queue_main(int argc, char **argv, const char *config_dir_arg);

#endif
