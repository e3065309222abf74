/* directory.h — what intake knows from PostgreSQL without needing it: the
 * API tokens (hashes and roles) and the category codes. A copy is refreshed
 * from the database every few seconds on libuv's thread pool and cached in a
 * file, so intake keeps taking petitions while the database is down, even
 * across a restart. */
#ifndef INTAKE_DIRECTORY_H
#define INTAKE_DIRECTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

typedef struct intake_directory intake_directory_t;

/* Loads the cache file, then tries the database once synchronously, then
 * refreshes every refresh_s seconds. *out is the caller's. */
int intake_directory_open(uv_loop_t *loop, const char *conninfo, const char *cache_path,
                          int refresh_s, intake_directory_t **out);
void intake_directory_close(intake_directory_t **d);
void intake_directory_set_refresh(intake_directory_t *d, int refresh_s);

/* What a bearer token is (strings borrowed until the next refresh). */
typedef struct {
    const char *role;   /* "hotline", "admin", "grid"… */
    const char *region; /* a grid worker's region code, else NULL */
    const char *name;   /* the token's name (fenboctl token create --name) */
} intake_token_info_t;

/* Fills *out for a known, unexpired token; false when unknown. */
bool intake_directory_token(const intake_directory_t *d, const char *token,
                            intake_token_info_t *out);
/* The role of a bearer token ("hotline", "admin", …) or NULL when unknown. */
const char *intake_directory_role(const intake_directory_t *d, const char *token);
/* True when (lat, lng), WGS-84, lies inside region (a grid token's region,
 * whose polygon the directory holds); false for any other region. */
bool intake_directory_in_area(const intake_directory_t *d, const char *region, double lat,
                              double lng);
/* intake_category_known_cb: true for known codes, and for any code while no
 * category list was ever loaded. */
bool intake_directory_category_known(void *d, const char *code);

/* The category tree as [{"code","name","parent_code"}], ordered by code
 * (borrowed; NULL before the first load). */
const json_t *intake_directory_categories(const intake_directory_t *d);
/* True when (lat, lng), WGS-84, lies within the city's bounding box (always
 * true while the regions are not known). */
bool intake_directory_in_city(const intake_directory_t *d, double lat, double lng);

#endif
