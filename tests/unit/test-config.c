/* Unit tests for common/src/config.c */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wf/config.h"

struct cfg {
	char *host;
	int64_t port;
	bool tls;
	int64_t keepalive_ms;
	double ratio;
	int64_t max_size;
	int mode;
	char *name;
	char *label;
	int64_t offset;
};

static const char *const modes[] = { "fast", "safe", "paranoid", NULL };

static const struct wf_config_key T[] = {
	{ "mqtt", "host", WF_CONFIG_STRING, offsetof(struct cfg, host), 0, 0, "127.0.0.1",
	  "Broker host name or address.", NULL },
	{ "mqtt", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 1, 65535, "1883",
	  "Broker TCP port.", NULL },
	{ "mqtt", "tls", WF_CONFIG_BOOL, offsetof(struct cfg, tls), 0, 0, "false",
	  "Use TLS.\nRequires a CA file.", NULL },
	{ "mqtt", "keepalive", WF_CONFIG_DURATION, offsetof(struct cfg, keepalive_ms), 1000,
	  3600000, "30s", "MQTT keepalive.", NULL },
	{ "engine", "ratio", WF_CONFIG_DOUBLE, offsetof(struct cfg, ratio), 0, 1, "0.5",
	  "Corroboration ratio.", NULL },
	{ "engine", "max_size", WF_CONFIG_SIZE, offsetof(struct cfg, max_size), 1024, 1 << 30,
	  "64K", "Largest message.", NULL },
	{ "engine", "mode", WF_CONFIG_ENUM, offsetof(struct cfg, mode), 0, 0, "safe",
	  "Processing mode.", modes },
	{ "engine", "name", WF_CONFIG_STRING, offsetof(struct cfg, name), 0, 0, NULL,
	  "Instance name (unset by default).", NULL },
	{ "engine", "label", WF_CONFIG_STRING, offsetof(struct cfg, label), 1, 16, "main",
	  "Short label.", NULL },
	{ "engine", "offset", WF_CONFIG_INT, offsetof(struct cfg, offset), 0, 0, "-5",
	  "Unbounded integer.", NULL },
};
#define N (sizeof T / sizeof T[0])

static char err[1024];

static int load(const char *text, struct cfg *c)
{
	err[0] = '\0';
	return wf_config_load_string("test.conf", text, T, N, c, err, sizeof err);
}

/* Loads "[SECTION]\nKEY = VALUE\n"; expects failure with exactly MSG. */
static void expect_error(const char *text, int code, const char *msg)
{
	struct cfg c;
	memset(&c, 0xA5, sizeof c);
	struct cfg before = c;
	int r = load(text, &c);
	ck_assert_msg(r == code, "'%s': got %d (%s), want %d", text, r, err, code);
	ck_assert_str_eq(err, msg);
	ck_assert_msg(memcmp(&c, &before, sizeof c) == 0, "target touched on failure");
}

static void expect_value_error(const char *section, const char *key, const char *value,
			       const char *msg)
{
	char text[512], want[512];
	snprintf(text, sizeof text, "# header\n[%s]\n%s = %s\n", section, key, value);
	snprintf(want, sizeof want, "test.conf:3: %s", msg);
	expect_error(text, -EINVAL, want);
}

START_TEST(test_defaults)
{
	struct cfg c;
	memset(&c, 0xA5, sizeof c);
	ck_assert_int_eq(load("", &c), 0);
	ck_assert_str_eq(c.host, "127.0.0.1");
	ck_assert_int_eq(c.port, 1883);
	ck_assert(!c.tls);
	ck_assert_int_eq(c.keepalive_ms, 30000);
	ck_assert_double_eq(c.ratio, 0.5);
	ck_assert_int_eq(c.max_size, 65536);
	ck_assert_int_eq(c.mode, 1);
	ck_assert_ptr_null(c.name);
	ck_assert_str_eq(c.label, "main");
	ck_assert_int_eq(c.offset, -5);
	wf_config_free(T, N, &c);
	ck_assert_ptr_null(c.host);
	ck_assert_ptr_null(c.label);

	struct cfg d;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(wf_config_defaults(T, N, &d, err, sizeof err), 0);
	ck_assert_str_eq(d.host, "127.0.0.1");
	ck_assert_int_eq(d.port, 1883);
	wf_config_free(T, N, &d);
	wf_config_free(T, N, NULL); /* accepts NULL */
}
END_TEST

START_TEST(test_good_forms)
{
	struct cfg c = { 0 };
	ck_assert_msg(load("[mqtt]\n"
			      "host = broker.example\n"
			      "port = 65535\n"
			      "tls = YES\n"
			      "keepalive = 1m30s500ms\n"
			      "[engine]\n"
			      "ratio = 1e-1\n"
			      "max_size = 256M\n"
			      "mode = paranoid\n"
			      "name = 北京市应急管理局\n"
			      "label = x\n"
			      "offset = -9223372036854775808\n", &c) == 0, "%s", err);
	ck_assert_str_eq(c.host, "broker.example");
	ck_assert_int_eq(c.port, 65535);
	ck_assert(c.tls);
	ck_assert_int_eq(c.keepalive_ms, 90500);
	ck_assert_double_eq_tol(c.ratio, 0.1, 1e-12);
	ck_assert_int_eq(c.max_size, 256 * 1024 * 1024);
	ck_assert_int_eq(c.mode, 2);
	ck_assert_str_eq(c.name, "北京市应急管理局");
	ck_assert_str_eq(c.label, "x");
	ck_assert_int_eq(c.offset, INT64_MIN);
	wf_config_free(T, N, &c);

	static const struct { const char *text; bool want; } bools[] = {
		{ "true", true }, { "yes", true }, { "on", true }, { "1", true }, { "True", true },
		{ "false", false }, { "no", false }, { "off", false }, { "0", false }, { "OFF", false },
	};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "[mqtt]\ntls = %s\n", bools[i].text);
		ck_assert_int_eq(load(text, &c), 0);
		ck_assert_msg(c.tls == bools[i].want, "%s", bools[i].text);
		wf_config_free(T, N, &c);
	}

	static const struct { const char *text; int64_t ms; } durs[] = {
		{ "1000ms", 1000 }, { "30s", 30000 }, { "5m", 300000 }, { "1h", 3600000 },
		{ "1m30s", 90000 }, { "2s500ms", 2500 },
	};
	for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "[mqtt]\nkeepalive = %s\n", durs[i].text);
		ck_assert_msg(load(text, &c) == 0, "%s: %s", durs[i].text, err);
		ck_assert_int_eq(c.keepalive_ms, durs[i].ms);
		wf_config_free(T, N, &c);
	}
	int64_t v;
	ck_assert_int_eq(wf_config_parse_duration("1d", &v), 0);
	ck_assert_int_eq(v, 86400000);
	ck_assert_int_eq(wf_config_parse_duration("0", &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(wf_config_parse_duration("250ms", &v), 0);
	ck_assert_int_eq(v, 250);

	static const struct { const char *text; int64_t bytes; } sizes[] = {
		{ "1024", 1024 }, { "64K", 65536 }, { "64k", 65536 }, { "1G", 1073741824 },
		{ "2M", 2097152 },
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "[engine]\nmax_size = %s\n", sizes[i].text);
		ck_assert_msg(load(text, &c) == 0, "%s: %s", sizes[i].text, err);
		ck_assert_int_eq(c.max_size, sizes[i].bytes);
		wf_config_free(T, N, &c);
	}
	ck_assert_int_eq(wf_config_parse_size("1T", &v), 0);
	ck_assert_int_eq(v, INT64_C(1) << 40);

	static const struct { const char *text; double d; } dbls[] = {
		{ "0", 0.0 }, { "1", 1.0 }, { "0.25", 0.25 }, { ".75", 0.75 }, { "+1.0", 1.0 },
	};
	for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "[engine]\nratio = %s\n", dbls[i].text);
		ck_assert_msg(load(text, &c) == 0, "%s: %s", dbls[i].text, err);
		ck_assert_double_eq(c.ratio, dbls[i].d);
		wf_config_free(T, N, &c);
	}
}
END_TEST

START_TEST(test_bad_forms)
{
	expect_value_error("mqtt", "port", "abc",
			   "invalid value 'abc' for 'port' in [mqtt]: expected an integer");
	expect_value_error("mqtt", "port", "12x",
			   "invalid value '12x' for 'port' in [mqtt]: expected an integer");
	expect_value_error("mqtt", "port", "0x10",
			   "invalid value '0x10' for 'port' in [mqtt]: expected an integer");
	expect_value_error("mqtt", "port", "",
			   "invalid value '' for 'port' in [mqtt]: expected an integer");
	expect_value_error("mqtt", "tls", "maybe",
			   "invalid value 'maybe' for 'tls' in [mqtt]: "
			   "expected true/false, yes/no, on/off or 1/0");
	expect_value_error("mqtt", "keepalive", "30",
			   "invalid value '30' for 'keepalive' in [mqtt]: "
			   "expected a duration such as 250ms, 30s, 5m, 2h, 1d");
	expect_value_error("mqtt", "keepalive", "30 s",
			   "invalid value '30 s' for 'keepalive' in [mqtt]: "
			   "expected a duration such as 250ms, 30s, 5m, 2h, 1d");
	expect_value_error("mqtt", "keepalive", "-5s",
			   "invalid value '-5s' for 'keepalive' in [mqtt]: "
			   "expected a duration such as 250ms, 30s, 5m, 2h, 1d");
	expect_value_error("mqtt", "keepalive", "5sec",
			   "invalid value '5sec' for 'keepalive' in [mqtt]: "
			   "expected a duration such as 250ms, 30s, 5m, 2h, 1d");
	expect_value_error("engine", "max_size", "64KB",
			   "invalid value '64KB' for 'max_size' in [engine]: "
			   "expected a size such as 4096, 64K, 256M, 1G");
	expect_value_error("engine", "max_size", "1.5M",
			   "invalid value '1.5M' for 'max_size' in [engine]: "
			   "expected a size such as 4096, 64K, 256M, 1G");
	expect_value_error("engine", "ratio", "half",
			   "invalid value 'half' for 'ratio' in [engine]: "
			   "expected a finite decimal number");
	expect_value_error("engine", "ratio", "nan",
			   "invalid value 'nan' for 'ratio' in [engine]: "
			   "expected a finite decimal number");
	expect_value_error("engine", "ratio", "1e999",
			   "invalid value '1e999' for 'ratio' in [engine]: not a finite number");
	expect_value_error("engine", "mode", "Fast",
			   "invalid value 'Fast' for 'mode' in [engine]: "
			   "expected one of: fast, safe, paranoid");
	expect_value_error("engine", "label", "",
			   "invalid value '' for 'label' in [engine]: too short (0 bytes, minimum 1)");
	expect_value_error("engine", "label", "abcdefghijklmnopq",
			   "invalid value 'abcdefghijklmnopq' for 'label' in [engine]: "
			   "too long (17 bytes, limit 16)");
	/* UTF-8 lengths are in bytes: 6 characters, 18 bytes */
	expect_value_error("engine", "label", "北京市应急管",
			   "invalid value '北京市应急管' for 'label' in [engine]: "
			   "too long (18 bytes, limit 16)");
}
END_TEST

START_TEST(test_bounds)
{
	struct cfg c = { 0 };
	expect_value_error("mqtt", "port", "0",
			   "invalid value '0' for 'port' in [mqtt]: out of range [1, 65535]");
	expect_value_error("mqtt", "port", "65536",
			   "invalid value '65536' for 'port' in [mqtt]: out of range [1, 65535]");
	expect_value_error("mqtt", "port", "99999999999999999999",
			   "invalid value '99999999999999999999' for 'port' in [mqtt]: "
			   "out of range [1, 65535]");
	expect_value_error("engine", "offset", "9223372036854775808",
			   "invalid value '9223372036854775808' for 'offset' in [engine]: "
			   "out of range (too large)");
	expect_value_error("mqtt", "keepalive", "999ms",
			   "invalid value '999ms' for 'keepalive' in [mqtt]: out of range [1s, 1h]");
	expect_value_error("mqtt", "keepalive", "1h1ms",
			   "invalid value '1h1ms' for 'keepalive' in [mqtt]: out of range [1s, 1h]");
	expect_value_error("mqtt", "keepalive", "99999999999d",
			   "invalid value '99999999999d' for 'keepalive' in [mqtt]: "
			   "out of range [1s, 1h]");
	expect_value_error("engine", "max_size", "1023",
			   "invalid value '1023' for 'max_size' in [engine]: out of range [1K, 1G]");
	expect_value_error("engine", "max_size", "2G",
			   "invalid value '2G' for 'max_size' in [engine]: out of range [1K, 1G]");
	expect_value_error("engine", "ratio", "1.0001",
			   "invalid value '1.0001' for 'ratio' in [engine]: out of range [0, 1]");
	expect_value_error("engine", "ratio", "-0.1",
			   "invalid value '-0.1' for 'ratio' in [engine]: out of range [0, 1]");

	/* the edges themselves are accepted */
	ck_assert_int_eq(load("[mqtt]\nport = 1\nkeepalive = 1s\n[engine]\nmax_size = 1G\n"
			      "ratio = 0\n", &c), 0);
	ck_assert_int_eq(c.port, 1);
	ck_assert_int_eq(c.keepalive_ms, 1000);
	ck_assert_int_eq(c.max_size, 1073741824);
	wf_config_free(T, N, &c);

	int64_t v = 7;
	ck_assert_int_eq(wf_config_parse_size("9999999999T", &v), -ERANGE);
	ck_assert_int_eq(wf_config_parse_duration("9223372036854775807d", &v), -ERANGE);
	ck_assert_int_eq(wf_config_parse_duration("", &v), -EINVAL);
	ck_assert_int_eq(wf_config_parse_duration("ms", &v), -EINVAL);
	ck_assert_int_eq(v, 7);
	bool b = true;
	ck_assert_int_eq(wf_config_parse_bool("", &b), -EINVAL);
	ck_assert(b);
}
END_TEST

START_TEST(test_unknown_and_duplicate)
{
	expect_error("[mqtt]\nport = 1\n\n[mqt]\n", -EINVAL,
		     "test.conf:4: unknown section [mqt] (did you mean [mqtt]?)");
	expect_error("[zzz]\n", -EINVAL, "test.conf:1: unknown section [zzz]");
	expect_error("[mqtt]\nhost = a\nprot = 1\n", -EINVAL,
		     "test.conf:3: unknown key 'prot' in [mqtt] (did you mean 'port'?)");
	expect_error("[mqtt]\nPort = 1\n", -EINVAL,
		     "test.conf:2: unknown key 'Port' in [mqtt] (did you mean 'port'?)");
	expect_error("[mqtt]\nratio = 1\n", -EINVAL,
		     "test.conf:2: unknown key 'ratio' in [mqtt] (did you mean 'ratio' in [engine]?)");
	expect_error("[mqtt]\nbogus = 1\n", -EINVAL,
		     "test.conf:2: unknown key 'bogus' in [mqtt]");
	expect_error("[mqtt]\nport = 1\ntls = on\n; again\n  port = 2\n", -EINVAL,
		     "test.conf:5: duplicate key 'port' in [mqtt] (first set on line 2)");
	/* a repeated section header is fine, a repeated key across it is not */
	expect_error("[mqtt]\nport = 1\n[engine]\nmode = fast\n[mqtt]\nport = 2\n", -EINVAL,
		     "test.conf:6: duplicate key 'port' in [mqtt] (first set on line 2)");
	expect_error("port = 1\n", -EINVAL, "test.conf:1: key 'port' outside of any [section]");
	/* the first error wins */
	expect_error("[mqtt]\nport = x\nbogus = 1\n", -EINVAL,
		     "test.conf:2: invalid value 'x' for 'port' in [mqtt]: expected an integer");
	expect_error("[mqtt]\njunk line\nport = x\n", -EINVAL,
		     "test.conf:2: syntax error: expected '[section]' or 'key = value'");
}
END_TEST

START_TEST(test_syntax_errors)
{
	expect_error("[mqtt\n", -EINVAL, "test.conf:1: syntax error: missing ']' in section header");
	expect_error("\n[mqtt] junk\n", -EINVAL,
		     "test.conf:2: syntax error: unexpected text after ']'");
	expect_error("[]\n", -EINVAL, "test.conf:1: syntax error: empty section name");
	expect_error("[mqtt]\n= 5\n", -EINVAL,
		     "test.conf:2: syntax error: missing key name before '='");
	expect_error("[mqtt]\nport = 1\nhost\n", -EINVAL,
		     "test.conf:3: syntax error: expected '[section]' or 'key = value'");
	expect_error("[mqtt]\nhost = a\x1b[31mb\n", -EINVAL,
		     "test.conf:2: invalid control character 0x1b");

	/* line length: WF_CONFIG_LINE_MAX bytes of content pass, one more fails */
	char text[2048];
	char value[WF_CONFIG_LINE_MAX + 2];
	size_t vlen = WF_CONFIG_LINE_MAX - strlen("name = ");
	memset(value, 'v', vlen);
	value[vlen] = '\0';
	struct cfg c = { 0 };
	static const struct wf_config_key long_key[] = {
		{ "engine", "name", WF_CONFIG_STRING, offsetof(struct cfg, name), 0, 0, NULL, NULL, NULL },
	};
	snprintf(text, sizeof text, "[engine]\nname = %s   ; trailing comment is not counted\n", value);
	ck_assert_msg(wf_config_load_string("test.conf", text, long_key, 1, &c, err, sizeof err) == 0,
		      "%s", err);
	ck_assert_uint_eq(strlen(c.name), vlen);
	wf_config_free(long_key, 1, &c);
	snprintf(text, sizeof text, "[engine]\n\nname = %sv\n", value);
	ck_assert_int_eq(wf_config_load_string("test.conf", text, long_key, 1, &c, err, sizeof err),
			 -EINVAL);
	ck_assert_str_eq(err, "test.conf:3: line too long (197 bytes, limit 196)");
	ck_assert_ptr_null(c.name);

	/* long comment lines are fine */
	char comment[600];
	memset(comment, 'c', sizeof comment - 1);
	comment[sizeof comment - 1] = '\0';
	snprintf(text, sizeof text, "# %s\n[mqtt]\nport = 2 ; %s\n", comment, comment);
	ck_assert_msg(load(text, &c) == 0, "%s", err);
	ck_assert_int_eq(c.port, 2);
	wf_config_free(T, N, &c);
}
END_TEST

START_TEST(test_comments_and_whitespace)
{
	struct cfg c = { 0 };
	ck_assert_msg(load("; semicolon comment\n"
			   "# hash comment\n"
			   "   # indented comment\n"
			   "\n"
			   "[mqtt]   ; comment after section\n"
			   "\thost\t=\tbroker # inline hash comment is stripped\n"
			   "  port=1884 ; inline semicolon comment is stripped\n"
			   "tls: on\n"
			   "[engine] # hash after section\n"
			   "name = a#b;c\n"
			   "label = x  y\n", &c) == 0, "%s", err);
	ck_assert_str_eq(c.host, "broker");
	ck_assert_int_eq(c.port, 1884);
	ck_assert(c.tls);
	ck_assert_str_eq(c.name, "a#b;c"); /* no whitespace before: part of the value */
	ck_assert_str_eq(c.label, "x  y"); /* inner whitespace kept */
	wf_config_free(T, N, &c);

	/* an indented line is not an inih continuation line, CRLF and a BOM are accepted */
	ck_assert_msg(load("\xEF\xBB\xBF[mqtt]\r\nport = 1\r\n    tls = yes\r\n", &c) == 0, "%s", err);
	ck_assert_int_eq(c.port, 1);
	ck_assert(c.tls);
	wf_config_free(T, N, &c);

	/* the comment is stripped before the value is parsed: a path stays a path */
	ck_assert_int_eq(load("[engine]\nname = /var/lib/wf #state dir\n", &c), 0);
	ck_assert_str_eq(c.name, "/var/lib/wf");
	wf_config_free(T, N, &c);

	/* an empty value is an empty string */
	ck_assert_int_eq(load("[mqtt]\nhost =\n", &c), 0);
	ck_assert_str_eq(c.host, "");
	wf_config_free(T, N, &c);
}
END_TEST

static char tmpdir[256];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/wf-test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_files)
{
	char path[512], want[1024];
	struct cfg c;
	make_tmpdir();

	/* missing file */
	snprintf(path, sizeof path, "%s/missing.conf", tmpdir);
	memset(&c, 0x5A, sizeof c);
	ck_assert_int_eq(wf_config_load(path, T, N, &c, err, sizeof err), -ENOENT);
	snprintf(want, sizeof want, "%s: No such file or directory", path);
	ck_assert_str_eq(err, want);

	/* a directory */
	ck_assert_int_eq(wf_config_load(tmpdir, T, N, &c, err, sizeof err), -EINVAL);
	snprintf(want, sizeof want, "%s: not a regular file", tmpdir);
	ck_assert_str_eq(err, want);

	/* a good file */
	snprintf(path, sizeof path, "%s/good.conf", tmpdir);
	const char *good = "[mqtt]\nport = 8883\n";
	write_file(path, good, strlen(good));
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(wf_config_load(path, T, N, &c, err, sizeof err), 0);
	ck_assert_int_eq(c.port, 8883);
	wf_config_free(T, N, &c);

	/* a bad file names its path and line */
	snprintf(path, sizeof path, "%s/bad.conf", tmpdir);
	const char *bad = "[mqtt]\n\nport = 0\n";
	write_file(path, bad, strlen(bad));
	ck_assert_int_eq(wf_config_load(path, T, N, &c, err, sizeof err), -EINVAL);
	snprintf(want, sizeof want,
		 "%s:3: invalid value '0' for 'port' in [mqtt]: out of range [1, 65535]", path);
	ck_assert_str_eq(err, want);

	/* a shared file: wf_config_load_sections skips sections it does not
	 * know (another reader's), but still checks keys of its own */
	snprintf(path, sizeof path, "%s/shared.conf", tmpdir);
	const char *shared = "[water]\nwarning_stage = 1\n[mqtt]\nport = 2883\n[water.station 1]\nx=1\n";
	write_file(path, shared, strlen(shared));
	ck_assert_int_eq(wf_config_load(path, T, N, &c, err, sizeof err), -EINVAL);
	snprintf(want, sizeof want, "%s:1: unknown section [water]", path);
	ck_assert_str_eq(err, want);
	memset(&c, 0, sizeof c);
	ck_assert_msg(wf_config_load_sections(path, T, N, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(c.port, 2883);
	ck_assert_str_eq(c.host, "127.0.0.1");
	wf_config_free(T, N, &c);
	const char *shared_bad = "[water]\nq = 1\n[mqtt]\nprt = 2883\n";
	write_file(path, shared_bad, strlen(shared_bad));
	ck_assert_int_eq(wf_config_load_sections(path, T, N, &c, err, sizeof err), -EINVAL);
	snprintf(want, sizeof want, "%s:4: unknown key 'prt' in [mqtt] (did you mean 'port'?)", path);
	ck_assert_str_eq(err, want);

	/* a NUL byte */
	snprintf(path, sizeof path, "%s/nul.conf", tmpdir);
	write_file(path, "[mqtt]\nhost = a\0b\n", 17);
	ck_assert_int_eq(wf_config_load(path, T, N, &c, err, sizeof err), -EINVAL);
	snprintf(want, sizeof want, "%s:2: invalid control character 0x00", path);
	ck_assert_str_eq(err, want);

	/* size limit: exactly WF_CONFIG_FILE_MAX bytes load, one more does not */
	size_t big = WF_CONFIG_FILE_MAX;
	char *data = malloc(big + 1);
	ck_assert_ptr_nonnull(data);
	const char *head = "[mqtt]\nport = 7\n";
	memset(data, '#', big + 1);
	memcpy(data, head, strlen(head));
	for (size_t i = strlen(head) + 99; i < big; i += 100)
		data[i] = '\n';
	snprintf(path, sizeof path, "%s/big.conf", tmpdir);
	write_file(path, data, big);
	ck_assert_msg(wf_config_load(path, T, N, &c, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(c.port, 7);
	wf_config_free(T, N, &c);
	write_file(path, data, big + 1);
	memset(&c, 0x5A, sizeof c);
	struct cfg before = c;
	ck_assert_int_eq(wf_config_load(path, T, N, &c, err, sizeof err), -EFBIG);
	snprintf(want, sizeof want, "%s: file too large (1048577 bytes, limit 1048576)", path);
	ck_assert_str_eq(err, want);
	ck_assert(memcmp(&c, &before, sizeof c) == 0);
	/* the same through load_string */
	data[big] = '\0';
	ck_assert_int_eq(wf_config_load_string("s", data, T, N, &c, err, sizeof err), 0);
	wf_config_free(T, N, &c);
	data[big] = '#';
	char *data2 = realloc(data, big + 2);
	ck_assert_ptr_nonnull(data2);
	data = data2;
	data[big + 1] = '\0';
	ck_assert_int_eq(wf_config_load_string("s", data, T, N, &c, err, sizeof err), -EFBIG);
	ck_assert_str_eq(err, "s: file too large (1048577 bytes, limit 1048576)");
	free(data);

	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_reload_keeps_old)
{
	struct cfg cur = { 0 }, tmp = { 0 };
	ck_assert_int_eq(load("[mqtt]\nhost = first\nport = 1000\n", &cur), 0);

	/* a failed load does not touch the fresh struct, so the old one stays */
	ck_assert_int_eq(load("[mqtt]\nhost = second\nport = 1001\nbogus = 1\n", &tmp), -EINVAL);
	ck_assert_ptr_null(tmp.host);
	ck_assert_int_eq(tmp.port, 0);
	ck_assert_str_eq(cur.host, "first");
	ck_assert_int_eq(cur.port, 1000);

	/* a good load is swapped in */
	ck_assert_int_eq(load("[mqtt]\nhost = third\n", &tmp), 0);
	wf_config_free(T, N, &cur);
	cur = tmp;
	ck_assert_str_eq(cur.host, "third");
	ck_assert_int_eq(cur.port, 1883);
	wf_config_free(T, N, &cur);
}
END_TEST

START_TEST(test_print_defaults_roundtrip)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(wf_config_print_defaults(f, T, N), 0);
	ck_assert_int_eq(fclose(f), 0);

	ck_assert_ptr_nonnull(strstr(text, "[mqtt]\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n[engine]\n"));
	ck_assert_ptr_nonnull(strstr(text, "# Broker TCP port.\n# integer, range [1, 65535]\nport = 1883\n"));
	ck_assert_ptr_nonnull(strstr(text, "# Use TLS.\n# Requires a CA file.\n"));
	ck_assert_ptr_nonnull(strstr(text, "# duration, range [1s, 1h]\n"));
	ck_assert_ptr_nonnull(strstr(text, "# size, range [1K, 1G]\n"));
	ck_assert_ptr_nonnull(strstr(text, "# one of: fast, safe, paranoid\nmode = safe\n"));
	ck_assert_ptr_nonnull(strstr(text, "#name =\n"));
	/* sections appear once even though the table could interleave them */
	ck_assert_ptr_null(strstr(strstr(text, "[mqtt]") + 1, "[mqtt]"));

	struct cfg a = { 0 }, b = { 0 };
	ck_assert_msg(load(text, &a) == 0, "%s\n%s", err, text);
	ck_assert_int_eq(load("", &b), 0);
	ck_assert_str_eq(a.host, b.host);
	ck_assert_int_eq(a.port, b.port);
	ck_assert_int_eq(a.tls, b.tls);
	ck_assert_int_eq(a.keepalive_ms, b.keepalive_ms);
	ck_assert_double_eq(a.ratio, b.ratio);
	ck_assert_int_eq(a.max_size, b.max_size);
	ck_assert_int_eq(a.mode, b.mode);
	ck_assert_ptr_null(a.name);
	ck_assert_str_eq(a.label, b.label);
	ck_assert_int_eq(a.offset, b.offset);
	wf_config_free(T, N, &a);
	wf_config_free(T, N, &b);
	free(text);
}
END_TEST

START_TEST(test_table_check)
{
	struct cfg c = { 0 };
	ck_assert_int_eq(wf_config_table_check(T, N, err, sizeof err), 0);

	const struct wf_config_key bad_default[] = {
		{ "a", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 1, 10, "11", NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(bad_default, 1, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "config table: bad default '11' for 'port' in [a]: out of range [1, 10]");
	/* the loader refuses a bad table too, and does not touch the target */
	c.port = 42;
	ck_assert_int_eq(load("", &c), 0); /* sanity: good table */
	wf_config_free(T, N, &c);
	c.port = 42;
	ck_assert_int_eq(wf_config_load_string("x", "", bad_default, 1, &c, err, sizeof err), -EINVAL);
	ck_assert_int_eq(c.port, 42);

	const struct wf_config_key zero_out_of_range[] = {
		{ "a", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 1, 10, NULL, NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(zero_out_of_range, 1, err, sizeof err), -EINVAL);

	const struct wf_config_key dup[] = {
		{ "a", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 0, 0, NULL, NULL, NULL },
		{ "a", "port", WF_CONFIG_INT, offsetof(struct cfg, offset), 0, 0, NULL, NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(dup, 2, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "config table: duplicate key 'port' in [a]");

	const struct wf_config_key no_values[] = {
		{ "a", "mode", WF_CONFIG_ENUM, offsetof(struct cfg, mode), 0, 0, NULL, NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(no_values, 1, err, sizeof err), -EINVAL);

	const struct wf_config_key bad_name[] = {
		{ "a b", "x", WF_CONFIG_INT, offsetof(struct cfg, port), 0, 0, NULL, NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(bad_name, 1, err, sizeof err), -EINVAL);

	const struct wf_config_key unwritable[] = {
		{ "a", "name", WF_CONFIG_STRING, offsetof(struct cfg, name), 0, 0, "x ; y", NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(unwritable, 1, err, sizeof err), -EINVAL);

	const struct wf_config_key min_gt_max[] = {
		{ "a", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 5, 1, "3", NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(min_gt_max, 1, err, sizeof err), -EINVAL);
	/* a string with a minimum length and the default maximum is fine */
	const struct wf_config_key nonempty[] = {
		{ "a", "name", WF_CONFIG_STRING, offsetof(struct cfg, name), 1, 0, "x", NULL, NULL },
	};
	ck_assert_int_eq(wf_config_table_check(nonempty, 1, err, sizeof err), 0);
	ck_assert_int_eq(wf_config_load_string("x", "[a]\nname =\n", nonempty, 1, &c, err, sizeof err),
			 -EINVAL);
	ck_assert_str_eq(err, "x:2: invalid value '' for 'name' in [a]: too short (0 bytes, minimum 1)");
	ck_assert_str_eq(wf_config_type_to_string(WF_CONFIG_DURATION), "duration");
	ck_assert_str_eq(wf_config_type_to_string(WF_CONFIG_TYPE_INVALID), "invalid");
}
END_TEST

/* The example table of docs/service-runtime.md, so the doc cannot rot. */
struct fusion_config {
	char *mqtt_host;
	int64_t mqtt_port;
	bool mqtt_tls;
	int64_t window_ms;
	int64_t map_size;
	int mode;
};

static const char *const fusion_modes[] = { "live", "exercise", NULL };

static const struct wf_config_key fusion_config[] = {
	{ "mqtt", "host", WF_CONFIG_STRING, offsetof(struct fusion_config, mqtt_host),
	  1, 0, "127.0.0.1", "Broker host name or address.", NULL },
	{ "mqtt", "port", WF_CONFIG_INT, offsetof(struct fusion_config, mqtt_port),
	  1, 65535, "1883", "Broker TCP port.", NULL },
	{ "mqtt", "tls", WF_CONFIG_BOOL, offsetof(struct fusion_config, mqtt_tls),
	  0, 0, "false", "Use TLS (required off loopback).", NULL },
	{ "fusion", "window", WF_CONFIG_DURATION, offsetof(struct fusion_config, window_ms),
	  1000, 86400000, "10m", "Correlation time window.", NULL },
	{ "store", "map_size", WF_CONFIG_SIZE, offsetof(struct fusion_config, map_size),
	  1 << 20, INT64_C(1) << 40, "1G", "LMDB map size.", NULL },
	{ "fusion", "mode", WF_CONFIG_ENUM, offsetof(struct fusion_config, mode),
	  0, 0, "live", "live or exercise.", fusion_modes },
};

START_TEST(test_doc_example)
{
	const size_t n = sizeof fusion_config / sizeof fusion_config[0];
	struct fusion_config f = { 0 };
	ck_assert_msg(wf_config_table_check(fusion_config, n, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(wf_config_load_string("fusion.conf", "[mqtt]\nwindow = 1m\n", fusion_config,
					       n, &f, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "fusion.conf:2: unknown key 'window' in [mqtt] "
			      "(did you mean 'window' in [fusion]?)");
	ck_assert_int_eq(wf_config_load_string("fusion.conf", "[fusion]\nwindow = 999ms\n",
					       fusion_config, n, &f, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "fusion.conf:2: invalid value '999ms' for 'window' in [fusion]: "
			      "out of range [1s, 1d]");
	ck_assert_int_eq(wf_config_load_string("fusion.conf", "[fusion]\nmode = Live\n",
					       fusion_config, n, &f, err, sizeof err), -EINVAL);
	ck_assert_str_eq(err, "fusion.conf:2: invalid value 'Live' for 'mode' in [fusion]: "
			      "expected one of: live, exercise");
	ck_assert_int_eq(wf_config_load_string("fusion.conf", "[fusion]\nmode = exercise\n"
					       "[store]\nmap_size = 4G\n",
					       fusion_config, n, &f, err, sizeof err), 0);
	ck_assert_int_eq(f.mode, 1);
	ck_assert_int_eq(f.map_size, INT64_C(4) << 30);
	ck_assert_int_eq(f.window_ms, 600000);
	ck_assert_str_eq(f.mqtt_host, "127.0.0.1");
	wf_config_free(fusion_config, n, &f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_good_forms);
	tcase_add_test(tc, test_bad_forms);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_unknown_and_duplicate);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_comments_and_whitespace);
	tcase_add_test(tc, test_files);
	tcase_add_test(tc, test_reload_keeps_old);
	tcase_add_test(tc, test_print_defaults_roundtrip);
	tcase_add_test(tc, test_table_check);
	tcase_add_test(tc, test_doc_example);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
