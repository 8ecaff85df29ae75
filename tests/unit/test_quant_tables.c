/* test_quant_tables.c - the IQ2_XXS tables against the SHA-256 sums of spec
 * §3.5 (a small test-only SHA-256 below, itself checked on the FIPS 180-2
 * vectors), plus the spec's stated entries and the sign-table rule, and the
 * type table's block sizes against the block structs. */
#pragma GCC diagnostic ignored "-Wclobbered"
#pragma GCC diagnostic ignored "-Wunused-function"
#include "harness.h"
#include "quant/quant.h"

typedef struct { uint32_t h[8]; uint8_t buf[64]; uint64_t len; size_t fill; } sha256;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static uint32_t ror(uint32_t x, int n) { return x >> n | x << (32 - n); }

static void sha_block(sha256 *s, const uint8_t *p) {
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, s->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ror(a[4], 6) ^ ror(a[4], 11) ^ ror(a[4], 25);
        uint32_t ch = (a[4] & a[5]) ^ (~a[4] & a[6]);
        uint32_t t1 = a[7] + S1 + ch + K256[i] + w[i];
        uint32_t S0 = ror(a[0], 2) ^ ror(a[0], 13) ^ ror(a[0], 22);
        uint32_t maj = (a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]);
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + S0 + maj;
    }
    for (int i = 0; i < 8; i++) s->h[i] += a[i];
}

static void sha_hex(const void *data, size_t n, char out[65]) {
    sha256 s = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}, {0}, 0, 0};
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        s.buf[s.fill++] = p[i];
        if (s.fill == 64) { sha_block(&s, s.buf); s.fill = 0; }
    }
    uint64_t bits = (uint64_t)n * 8;
    s.buf[s.fill++] = 0x80;
    if (s.fill > 56) { memset(s.buf + s.fill, 0, 64 - s.fill); sha_block(&s, s.buf); s.fill = 0; }
    memset(s.buf + s.fill, 0, 56 - s.fill);
    for (int i = 0; i < 8; i++) s.buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_block(&s, s.buf);
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s.h[i]);
}

TEST(sha256_known_vectors) {
    char hex[65];
    sha_hex("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(m, strlen(m), hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(iq2xxs_grid_sha256) {
    uint8_t bytes[2048];
    for (int i = 0; i < 256; i++)
        for (int b = 0; b < 8; b++) bytes[8 * i + b] = (uint8_t)(ds4_iq2xxs_grid[i] >> (8 * b));
    char hex[65];
    sha_hex(bytes, sizeof bytes, hex);
    CHECK_EQ_STR(hex, "05826b5d3e472a3a78f196be62ac78acf81df0f909626e12ab9fa2a5d490dd54");
    CHECK(ds4_iq2xxs_grid[0] == 0x0808080808080808ull);
    CHECK(ds4_iq2xxs_grid[1] == 0x080808080808082bull);
    CHECK(ds4_iq2xxs_grid[2] == 0x0808080808081919ull);
    CHECK(ds4_iq2xxs_grid[3] == 0x0808080808082b08ull);
    CHECK(ds4_iq2xxs_grid[252] == 0x2b2b082b08080808ull);
    CHECK(ds4_iq2xxs_grid[253] == 0x2b2b190808192b08ull);
    CHECK(ds4_iq2xxs_grid[254] == 0x2b2b2b0819190808ull);
    CHECK(ds4_iq2xxs_grid[255] == 0x2b2b2b1908081908ull);
    for (int i = 0; i < 2048; i++)
        CHECKF(bytes[i] == 8 || bytes[i] == 25 || bytes[i] == 43, "grid byte %d is %d", i, bytes[i]);
}

TEST(ksigns_sha256_and_rule) {
    char hex[65];
    sha_hex(ds4_ksigns_iq2xs, 128, hex);
    CHECK_EQ_STR(hex, "a76742a603f8beca5212ecce0f1f02f11a4887fd2f7c8b15aca0ea3eb3380c31");
    for (int i = 0; i < 128; i++) {
        CHECK_EQ_INT(ds4_ksigns_iq2xs[i], i | (__builtin_popcount((unsigned)i) & 1) << 7);
        CHECK_EQ_INT(__builtin_popcount(ds4_ksigns_iq2xs[i]) & 1, 0);
    }
}

TEST(type_table_matches_structs) {
    CHECK_EQ_INT(sizeof(ds4_block_q8_0), 34);
    CHECK_EQ_INT(sizeof(ds4_block_q2_K), 84);
    CHECK_EQ_INT(sizeof(ds4_block_q4_K), 144);
    CHECK_EQ_INT(sizeof(ds4_block_iq2_xxs), 66);
    CHECK_EQ_INT(sizeof(ds4_act_q8_0), 36);
    CHECK_EQ_INT(sizeof(ds4_block_q8_K), 292);
    CHECK_EQ_INT(ds4_type_block_bytes(DS4_TYPE_Q8_0), sizeof(ds4_block_q8_0));
    CHECK_EQ_INT(ds4_type_block_bytes(DS4_TYPE_Q2_K), sizeof(ds4_block_q2_K));
    CHECK_EQ_INT(ds4_type_block_bytes(DS4_TYPE_Q4_K), sizeof(ds4_block_q4_K));
    CHECK_EQ_INT(ds4_type_block_bytes(DS4_TYPE_IQ2_XXS), sizeof(ds4_block_iq2_xxs));
    CHECK_EQ_INT(ds4_type_block_bytes(DS4_TYPE_Q8_K), sizeof(ds4_block_q8_K));
    CHECK_EQ_INT(ds4_row_bytes(DS4_TYPE_IQ2_XXS, 4096), 16 * 66);
    CHECK_EQ_INT(ds4_row_bytes(DS4_TYPE_Q8_0, 33), 0);
    CHECK_EQ_INT(ds4_row_bytes(1234, 256), 0);
    CHECK_EQ_STR(ds4_type_name(DS4_TYPE_IQ2_XXS), "IQ2_XXS");
    CHECK_EQ_STR(ds4_type_name(99), "unknown");
    CHECK(!ds4_type_known(2));
}
