/* types.c - the GGML type table: which type ids exist and their block sizes.
 * Only the types a DeepSeek V4 Flash file may hold (plus BF16 and Q8_K, which
 * the container knows but the model never stores) are "known"; any other id is
 * refused by the GGUF reader rather than walked with a guessed size. */
#include "quant/quant.h"

static const struct { uint32_t id, elems, bytes; const char *name; } table[] = {
    {DS4_TYPE_F32, 1, 4, "F32"},
    {DS4_TYPE_F16, 1, 2, "F16"},
    {DS4_TYPE_Q8_0, 32, 34, "Q8_0"},
    {DS4_TYPE_Q2_K, 256, 84, "Q2_K"},
    {DS4_TYPE_Q4_K, 256, 144, "Q4_K"},
    {DS4_TYPE_Q8_K, 256, 292, "Q8_K"},
    {DS4_TYPE_IQ2_XXS, 256, 66, "IQ2_XXS"},
    {DS4_TYPE_I32, 1, 4, "I32"},
    {DS4_TYPE_BF16, 1, 2, "BF16"},
};

static int find(uint32_t t) {
    for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].id == t) return (int)i;
    return -1;
}

int ds4_type_known(uint32_t t) { return find(t) >= 0; }
uint32_t ds4_type_block_elems(uint32_t t) { int i = find(t); return i < 0 ? 0 : table[i].elems; }
uint32_t ds4_type_block_bytes(uint32_t t) { int i = find(t); return i < 0 ? 0 : table[i].bytes; }
const char *ds4_type_name(uint32_t t) { int i = find(t); return i < 0 ? "unknown" : table[i].name; }

uint64_t ds4_row_bytes(uint32_t t, uint64_t n) {
    int i = find(t);
    if (i < 0 || n % table[i].elems) return 0;
    return n / table[i].elems * table[i].bytes;
}
