/* test_auth.c - the Maskinporten grant, secret files and the refresh schedule.
 *
 * The grant is checked the way Maskinporten would: the test makes its own
 * RSA key pair with libcrypto, lets jwt.c sign with the private half, and
 * verifies the RS256 signature with the public half; the base64url parts
 * are decoded with OpenSSL's standard-alphabet decoder (not ours), so the
 * encoding is checked against a second implementation. Each check prints
 * what it expected; the exit status is the number of failures. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "json.h"
#include "jwt.h"
#include "secretfile.h"
#include "xalloc.h"

#include "check.h"

/* base64url -> bytes with OpenSSL's decoder: translate, pad, decode. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *ret_len)
{
	size_t padded = (n + 3) / 4 * 4;
	char *std = xmalloc(padded + 1);
	unsigned char *out = xmalloc(padded / 4 * 3 + 1);
	int len;

	for (size_t i = 0; i < n; i++)
		std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	for (size_t i = n; i < padded; i++)
		std[i] = '=';
	std[padded] = '\0';
	len = EVP_DecodeBlock(out, (unsigned char *)std, (int)padded);
	free(std);
	if (len < 0) {
		free(out);
		return NULL;
	}
	len -= (int)(padded - n); /* EVP_DecodeBlock counts the padding as zero bytes */
	out[len] = '\0';
	*ret_len = (size_t)len;
	return out;
}

static void test_b64url(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{ "", 0, "" },
		{ "f", 1, "Zg" },
		{ "fo", 2, "Zm8" },
		{ "foo", 3, "Zm9v" },
		{ "foob", 4, "Zm9vYg" },
		{ "fooba", 5, "Zm9vYmE" },
		{ "foobar", 6, "Zm9vYmFy" },
		{ "\xfb\xef\xbe", 3, "----" },
		{ "\xff\xff\xff", 3, "____" },
		{ "\xfb\xff", 2, "-_8" },
		{ "\0\0", 2, "AAA" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = jwt_b64url_encode(cases[i].in, cases[i].len);
		CHECK(strcmp(got, cases[i].out) == 0, "case %zu: got \"%s\", want \"%s\"", i, got,
		      cases[i].out);
		free(got);
	}
	/* every length against OpenSSL's decoder */
	for (size_t n = 0; n < 70; n++) {
		unsigned char buf[70], *back;
		size_t back_len = 0;
		char *enc;

		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)(i * 37 + n * 11 + 250);
		enc = jwt_b64url_encode(buf, n);
		CHECK(strcspn(enc, "+/=") == strlen(enc), "length %zu: \"%s\" is not base64url", n,
		      enc);
		back = b64url_decode(enc, strlen(enc), &back_len);
		CHECK(back && back_len == n && memcmp(back, buf, n) == 0,
		      "length %zu does not round-trip", n);
		free(back);
		free(enc);
	}
}

static void test_random_id(void)
{
	char a[37], b[37];

	CHECK(jwt_random_id(a, sizeof(a)) == 0 && jwt_random_id(b, sizeof(b)) == 0, "random ids");
	CHECK(strlen(a) == 36 && a[8] == '-' && a[13] == '-' && a[14] == '4' && a[18] == '-' &&
		      strchr("89ab", a[19]) && a[23] == '-',
	      "\"%s\" is not a version 4 uuid", a);
	CHECK(strcmp(a, b) != 0, "two ids are the same: %s", a);
	CHECK(jwt_random_id(a, 36) == -EINVAL || jwt_random_id(a, 36) == -EIO, "short buffer");
}

static char *pem_of(EVP_PKEY *pkey, int traditional, const char *pass)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *copy;
	long len;
	int ok;

	if (traditional)
		ok = PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL);
	else if (pass)
		ok = PEM_write_bio_PrivateKey(bio, pkey, EVP_aes_256_cbc(), (unsigned char *)pass,
					      (int)strlen(pass), NULL, NULL);
	else
		ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
	if (!ok)
		abort();
	len = BIO_get_mem_data(bio, &data);
	copy = xstrndup(data, (size_t)len);
	BIO_free(bio);
	return copy;
}

/* Splits "a.b.c"; decodes a and b. */
static int split_jwt(const char *jwt, char **ret_header, char **ret_claims, const char **ret_sig)
{
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	size_t n;

	if (!d2 || strchr(d2 + 1, '.'))
		return -1;
	*ret_header = (char *)b64url_decode(jwt, (size_t)(d1 - jwt), &n);
	*ret_claims = (char *)b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &n);
	*ret_sig = d2 + 1;
	return *ret_header && *ret_claims ? 0 : -1;
}

static bool verify_rs256(EVP_PKEY *pub, const char *jwt)
{
	const char *last = strrchr(jwt, '.');
	unsigned char *sig;
	size_t sig_len;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	sig = b64url_decode(last + 1, strlen(last + 1), &sig_len);
	ok = sig && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
	     EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)jwt,
			      (size_t)(last - jwt)) == 1;
	EVP_MD_CTX_free(ctx);
	free(sig);
	return ok;
}

static EVP_PKEY *public_half(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_mem());
	EVP_PKEY *pub;

	PEM_write_bio_PUBKEY(bio, pkey);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return pub;
}

static void test_grant(EVP_PKEY *pkey, int traditional)
{
	const char *scope = "altinn:serviceowner/instances.read altinn:serviceowner/instances.write";
	struct jwt_grant g = {
		.kid = "key-2026",
		.client_id = "0b8f4c2e-1234-4cde-9abc-def012345678",
		.audience = "https://test.maskinporten.no/",
		.scope = scope,
		.iat = 1767225600,
		.lifetime = 60,
	};
	char *pem = pem_of(pkey, traditional, NULL), *jwt1 = NULL, *jwt2 = NULL;
	char *header = NULL, *claims = NULL, *h2 = NULL, *c2 = NULL;
	EVP_PKEY *pub = public_half(pkey);
	struct jwt_key *key = NULL;
	const char *sig, *sig2, *jti;
	char why[128] = "";

	CHECK(jwt_key_from_pem(pem, strlen(pem), &key, why, sizeof(why)) == 0,
	      "%s key: %s", traditional ? "RSA PRIVATE KEY" : "PRIVATE KEY", why);
	if (!key)
		goto out;
	CHECK(jwt_grant_sign(key, &g, &jwt1) == 0, "sign");
	CHECK(jwt_grant_sign(key, &g, &jwt2) == 0, "sign again");
	if (!jwt1 || !jwt2)
		goto out;
	CHECK(strcspn(jwt1, "+/= \n") == strlen(jwt1), "not base64url: %s", jwt1);
	CHECK(split_jwt(jwt1, &header, &claims, &sig) == 0, "not three parts: %s", jwt1);
	CHECK(split_jwt(jwt2, &h2, &c2, &sig2) == 0, "not three parts: %s", jwt2);
	if (!header || !claims || !c2)
		goto out;
	CHECK(strcmp(header, "{\"alg\":\"RS256\",\"kid\":\"key-2026\"}") == 0, "header %s", header);
	CHECK(strstr(claims, "\"aud\":\"https://test.maskinporten.no/\""), "aud in %s", claims);
	CHECK(strstr(claims, "\"iss\":\"0b8f4c2e-1234-4cde-9abc-def012345678\""), "iss in %s",
	      claims);
	CHECK(strstr(claims, "\"scope\":\"altinn:serviceowner/instances.read "
			     "altinn:serviceowner/instances.write\""),
	      "scope in %s", claims);
	CHECK(strstr(claims, "\"iat\":1767225600,"), "iat in %s", claims);
	CHECK(strstr(claims, "\"exp\":1767225660,"), "exp = iat + 60 in %s", claims);
	jti = strstr(claims, "\"jti\":\"");
	CHECK(jti && strlen(jti) == strlen("\"jti\":\"\"}") + 36 && jti[strlen(jti) - 1] == '}',
	      "jti in %s", claims);
	CHECK(!strstr(claims, "sub") && !strstr(claims, "client_id"), "extra claims in %s", claims);
	CHECK(jti && strstr(c2, "\"jti\":\"") && strcmp(jti, strstr(c2, "\"jti\":\"")) != 0,
	      "jti reused: %s and %s", claims, c2);
	CHECK(verify_rs256(pub, jwt1), "the signature does not verify with the public key");
	CHECK(verify_rs256(pub, jwt2), "the second signature does not verify");
	/* a changed claim breaks it */
	{
		char *bad = xstrdup(jwt1), *dot = strchr(bad, '.');
		dot[3] = dot[3] == 'A' ? 'B' : 'A';
		CHECK(!verify_rs256(pub, bad), "a tampered grant verifies");
		free(bad);
	}
	CHECK(strlen(sig) == 342, "RS256 with 2048 bits is 256 bytes, 342 characters: %zu",
	      strlen(sig));
out:
	free(header);
	free(claims);
	free(h2);
	free(c2);
	secretfile_free(jwt1);
	secretfile_free(jwt2);
	jwt_key_free(key);
	EVP_PKEY_free(pub);
	free(pem);
}

static void test_grant_refused(EVP_PKEY *pkey)
{
	char *pem = pem_of(pkey, 0, NULL), *jwt = NULL, *claims = NULL, *header = NULL;
	struct jwt_grant g = { "k", "c", "https://maskinporten.no/", "a:b", 1767225600, 121 };
	struct jwt_key *key = NULL;
	const char *sig;
	char why[128];

	if (jwt_key_from_pem(pem, strlen(pem), &key, why, sizeof(why)) < 0)
		abort();
	CHECK(jwt_grant_sign(key, &g, &jwt) == -EINVAL, "a grant of 121 s is signed");
	g.lifetime = 0;
	CHECK(jwt_grant_sign(key, &g, &jwt) == -EINVAL, "a grant of 0 s is signed");
	g.lifetime = 120;
	g.kid = "";
	CHECK(jwt_grant_sign(key, &g, &jwt) == -EINVAL, "a grant without kid is signed");
	g.kid = "k";
	g.scope = "odd \"scope\" \\ here";
	CHECK(jwt_grant_sign(key, &g, &jwt) == 0, "a grant of 120 s");
	if (jwt && split_jwt(jwt, &header, &claims, &sig) == 0)
		CHECK(strstr(claims, "\"scope\":\"odd \\\"scope\\\" \\\\ here\"") &&
			      strstr(claims, "\"exp\":1767225720"),
		      "JSON escaping in %s", claims);
	free(header);
	free(claims);
	secretfile_free(jwt);
	jwt_key_free(key);
	free(pem);
}

static void test_bad_keys(EVP_PKEY *rsa)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	char *ec_pem = pem_of(ec, 0, NULL), *enc_pem = pem_of(rsa, 0, "secret");
	const char *junk = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
	struct jwt_key *key = NULL;
	char why[128];

	CHECK(jwt_key_from_pem(junk, strlen(junk), &key, why, sizeof(why)) == -EINVAL &&
		      strstr(why, "no PEM private key"),
	      "junk: %s", why);
	CHECK(jwt_key_from_pem("", 0, &key, why, sizeof(why)) == -EINVAL, "empty");
	CHECK(jwt_key_from_pem(ec_pem, strlen(ec_pem), &key, why, sizeof(why)) == -EINVAL &&
		      strstr(why, "not RSA"),
	      "EC key: %s", why);
	CHECK(jwt_key_from_pem(enc_pem, strlen(enc_pem), &key, why, sizeof(why)) == -EINVAL &&
		      strstr(why, "encrypted"),
	      "encrypted key: %s", why);
	CHECK(key == NULL, "a key was returned on failure");
	EVP_PKEY_free(ec);
	free(ec_pem);
	free(enc_pem);
}

static void test_secretfile(void)
{
	char path[] = "/tmp/test_auth_XXXXXX", msg[256];
	char *buf = NULL, *err = NULL;
	struct stat st, st2;
	size_t len = 0;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, "  \"tok.en\"\n", 11) != 11)
		abort();
	close(fd);
	chmod(path, 0644);
	CHECK(secretfile_read(path, 100, &buf, &len, &st) == -EPERM, "0644 is read");
	secretfile_describe("token file", path, -EPERM, msg, sizeof(msg));
	CHECK(strstr(msg, "is readable by group or others (mode 0644): chmod 600 it"), "%s", msg);
	CHECK(secretfile_check("token file", path, &err) == -EPERM && err && strstr(err, "0644"),
	      "check: %s", err ? err : "(none)");
	free(err);
	err = NULL;
	chmod(path, 0620);
	secretfile_describe("key file", path, -EPERM, msg, sizeof(msg));
	CHECK(strstr(msg, "writable by group or others (mode 0620)"), "%s", msg);
	chmod(path, 0600);
	CHECK(secretfile_check("token file", path, &err) == 0, "check 0600: %s", err ? err : "");
	CHECK(secretfile_read(path, 100, &buf, &len, &st) == 0 && len == 11, "0600 is not read");
	if (buf) {
		CHECK(secretfile_clean(buf) && strcmp(buf, "tok.en") == 0, "cleaned: \"%s\"", buf);
		secretfile_wipe(buf, len + 1);
	}
	CHECK(secretfile_read(path, 10, &buf, &len, &st2) == -EFBIG, "the cap");
	chmod(path, 0400);
	stat(path, &st2);
	CHECK(!secretfile_same(&st, &st2), "a chmod is not a change");
	unlink(path);
	CHECK(secretfile_check("token file", path, &err) == -ENOENT && strstr(err, "cannot read"),
	      "missing: %s", err ? err : "");
	free(err);

	char s1[] = "a b", s2[] = " \r\n", s3[] = "x\ny", s4[] = "\"\"";
	CHECK(!secretfile_clean(s1) && !secretfile_clean(s2) && !secretfile_clean(s3) &&
		      !secretfile_clean(s4),
	      "unsafe or empty values pass");
}

static void test_schedule(void)
{
	static const struct {
		int64_t lifetime, want;
	} refresh[] = {
		{ 1800000, 1350000 }, /* 75% is sooner than exp - 60 s */
		{ 300000, 225000 },
		{ 200000, 140000 },   /* exp - 60 s is sooner */
		{ 120000, 60000 },
		{ 100000, 50000 },    /* never before half */
		{ 5000, 2500 },
		{ 1000, 500 },
		{ 0, 0 },
	};

	for (size_t i = 0; i < sizeof(refresh) / sizeof(refresh[0]); i++)
		CHECK(auth_refresh_after_ms(refresh[i].lifetime) == refresh[i].want,
		      "lifetime %lld: %lld, want %lld", (long long)refresh[i].lifetime,
		      (long long)auth_refresh_after_ms(refresh[i].lifetime),
		      (long long)refresh[i].want);
	CHECK(auth_retry_after_ms(1, 0) == 1000, "first retry");
	CHECK(auth_retry_after_ms(2, 0) == 2000, "second retry");
	CHECK(auth_retry_after_ms(5, 0) == 16000, "fifth retry");
	CHECK(auth_retry_after_ms(6, 0) == 30000, "the cap");
	CHECK(auth_retry_after_ms(1000, 0) == 30000, "the cap, much later");
	CHECK(auth_retry_after_ms(5, 9000) == 3000, "a third of what is left");
	CHECK(auth_retry_after_ms(1, 1500) == 1000, "at least a second");
}

static void test_answers(void)
{
	const char *mp = "{\n  \"access_token\" : \"IxC0B76vlWl3fiQhAwZUmD0hr_PPwC9hSIXRdoUslPU=\",\n"
			 "  \"token_type\" : \"Bearer\",\n  \"expires_in\" : 599,\n"
			 "  \"scope\" : \"difitest:test1\"\n}";
	const char *oauth = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid assertion\"}";
	const char *problem = "{\"title\":\"Unauthorized\",\"status\":401,\"detail\":\"bad\\nissuer\"}";
	char *s = NULL, buf[128];
	int64_t expires_in = -1;

	CHECK(json_parse_mp_token(mp, strlen(mp), &s, &expires_in) == 0 && s &&
		      strcmp(s, "IxC0B76vlWl3fiQhAwZUmD0hr_PPwC9hSIXRdoUslPU=") == 0 &&
		      expires_in == 599,
	      "the sample token response");
	free(s);
	s = NULL;
	CHECK(json_parse_mp_token("{\"token_type\":\"Bearer\"}", 23, &s, &expires_in) == -EIO,
	      "no access_token");
	CHECK(json_parse_mp_token("{\"access_token\":\"x\",\"token_type\":\"MAC\"}", 39, &s,
				  &expires_in) == -EIO,
	      "not a bearer token");
	CHECK(json_parse_string_answer("\"eyJ.a.b\"", 9, &s) == 0 && strcmp(s, "eyJ.a.b") == 0,
	      "quoted: %s", s ? s : "");
	free(s);
	CHECK(json_parse_string_answer("eyJ.a.b\n", 8, &s) == 0 && strcmp(s, "eyJ.a.b\n") == 0,
	      "raw");
	free(s);
	CHECK(json_parse_string_answer(" \"eyJ", 5, &s) == -EIO, "a broken quote");
	json_oauth_error(oauth, strlen(oauth), buf, sizeof(buf));
	CHECK(strcmp(buf, "invalid_grant: Invalid assertion") == 0, "%s", buf);
	json_oauth_error(problem, strlen(problem), buf, sizeof(buf));
	CHECK(strcmp(buf, "Unauthorized: bad issuer") == 0, "%s", buf);
	json_oauth_error("plain text", 10, buf, sizeof(buf));
	CHECK(buf[0] == '\0', "plain text: %s", buf);
	json_oauth_error(NULL, 0, buf, sizeof(buf));
	CHECK(buf[0] == '\0', "no body: %s", buf);
}

int main(void)
{
	EVP_PKEY *pkey;

	json_global_init();
	pkey = EVP_RSA_gen(2048);
	if (!pkey)
		abort();
	test_b64url();
	test_random_id();
	test_grant(pkey, 0);
	test_grant(pkey, 1);
	test_grant_refused(pkey);
	test_bad_keys(pkey);
	test_secretfile();
	test_schedule();
	test_answers();
	EVP_PKEY_free(pkey);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("all auth checks passed\n");
	return failures;
}
