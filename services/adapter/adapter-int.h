/* adapter-int: private helpers of the adapter skeleton (not for agencies). */
#ifndef WF_ADAPTER_INT_H
#define WF_ADAPTER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "adapter.h"

/* Reads all of FD (at most MAX bytes) into a malloc'd *ret_buf (NUL
 * appended, not counted). -EFBIG when larger than MAX, -ENOMEM, -errno. */
int adapter_read_fd(int fd, size_t max, uint8_t **ret_buf, size_t *ret_len);

/* Reads PATH ("-" is stdin) as above; a non-regular file is -EINVAL. */
int adapter_read_path(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len);

/* SHA-256 of BUF. Returns 0 or -EIO. */
int adapter_sha256(const uint8_t *buf, size_t len, uint8_t out[32]);

/* The shared [adapter] section of an agency's config file. */
struct adapter_conf {
	char *spool;      /* spool directory */
	char *state_dir;  /* LMDB environment of the outbox */
	char *producer;   /* producer id */
	char *regions;    /* region table CSV */
	size_t max_file;  /* bytes */
};

/* Loads [adapter] from PATH (NULL: defaults only), ignoring every other
 * section (they belong to the agency or to [service]/[mqtt]). Returns 0 or
 * a negative errno with "path:line: message" in ERR. */
int adapter_conf_load(const char *path, const char *kind, struct adapter_conf *ret, char *err,
		      size_t err_size);
void adapter_conf_free(struct adapter_conf *c);

/* Dry run of FILES: prints JSON lines to OUT; returns the exit status. */
int adapter_dry_run(const struct wf_adapter_ops *ops, void *state,
		    const struct wf_region_table *regions, int64_t now_ms, size_t max_file,
		    char **files, int nfiles, FILE *out, FILE *err);

/* --check FILES: "FILE: OK" / "FILE: INVALID: reason"; the exit status. */
int adapter_check(const struct wf_adapter_ops *ops, void *state, int64_t now_ms,
		  size_t max_file, char **files, int nfiles, FILE *out, FILE *err);


/* The I-th event of SINK, writable (the skeleton stamps producer and seq). */
Wf__V1__Event *adapter_sink_event_mut(struct wf_adapter_sink *sink, size_t i);

#endif
