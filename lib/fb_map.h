/* fb_map.h — a string-keyed hash table (open addressing, linear probing).
 * Keys are copied; values are borrowed pointers the caller manages. */
#ifndef FB_MAP_H
#define FB_MAP_H

#include <stddef.h>

typedef struct fb_map fb_map_t;

fb_map_t *fb_map_new(void);
/* Frees the table and its keys; free_value (may be NULL) is called on each value. */
void fb_map_destroy(fb_map_t **m, void (*free_value)(void *));
/* Inserts or replaces; returns the previous value (the caller's) or NULL. */
int fb_map_put(fb_map_t *m, const char *key, void *value, void **previous);
void *fb_map_get(const fb_map_t *m, const char *key);
/* Removes key; returns its value or NULL. */
void *fb_map_remove(fb_map_t *m, const char *key);
size_t fb_map_size(const fb_map_t *m);

#endif
