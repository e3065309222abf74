/* fb_map.c — open addressing with backward-shift deletion (no tombstones). */
#include "fb_map.h"
#include "fb_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key; /* NULL: empty slot */
    uint64_t hash;
    void *value;
} s_slot_t;

struct fb_map {
    s_slot_t *slots;
    size_t cap, n; /* cap is a power of two */
};

static uint64_t hash_of(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

fb_map_t *fb_map_new(void) {
    fb_map_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void fb_map_destroy(fb_map_t **mp, void (*free_value)(void *)) {
    fb_map_t *m = *mp;
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key) {
            free(m->slots[i].key);
            if (free_value)
                free_value(m->slots[i].value);
        }
    }
    free(m->slots);
    free(m);
    *mp = NULL;
}

static size_t find(const fb_map_t *m, const char *key, uint64_t h) {
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && (m->slots[i].hash != h || strcmp(m->slots[i].key, key) != 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int grow(fb_map_t *m) {
    size_t cap = m->cap * 2;
    s_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return FB_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int fb_map_put(fb_map_t *m, const char *key, void *value, void **previous) {
    if (previous)
        *previous = NULL;
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != 0)
        return FB_ENOMEM;
    uint64_t h = hash_of(key);
    size_t i = find(m, key, h);
    if (m->slots[i].key) {
        if (previous)
            *previous = m->slots[i].value;
        m->slots[i].value = value;
        return 0;
    }
    char *k = strdup(key);
    if (!k)
        return FB_ENOMEM;
    m->slots[i] = (s_slot_t){k, h, value};
    m->n++;
    return 0;
}

void *fb_map_get(const fb_map_t *m, const char *key) {
    size_t i = find(m, key, hash_of(key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

void *fb_map_remove(fb_map_t *m, const char *key) {
    size_t i = find(m, key, hash_of(key));
    if (!m->slots[i].key)
        return NULL;
    void *v = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->n--;
    /* Shift back the entries of the probe run that follows. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!m->slots[j].key)
            break;
        size_t home = m->slots[j].hash & (m->cap - 1);
        int between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return v;
}

size_t fb_map_size(const fb_map_t *m) {
    return m->n;
}
