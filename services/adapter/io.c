/* io: reading input files whole, with a size limit, and their digest. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "adapter-int.h"

int adapter_read_fd(int fd, size_t max, uint8_t **ret_buf, size_t *ret_len)
{
	size_t cap = 65536, len = 0;
	uint8_t *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			size_t ncap = cap * 2;
			uint8_t *n = realloc(buf, ncap + 1);
			if (!n) {
				free(buf);
				return -ENOMEM;
			}
			buf = n;
			cap = ncap;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			free(buf);
			return -EFBIG;
		}
	}
	buf[len] = '\0';
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

int adapter_read_path(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len)
{
	struct stat st;
	int fd, r;

	if (strcmp(path, "-") == 0)
		return adapter_read_fd(STDIN_FILENO, max, ret_buf, ret_len);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	r = adapter_read_fd(fd, max, ret_buf, ret_len);
	close(fd);
	return r;
}

int adapter_sha256(const uint8_t *buf, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -EIO;
	return 0;
}
