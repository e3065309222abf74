/* adapter.c — checks every channel adapter makes of its input, so that a
 * field is refused the same way whichever channel it came through. */
#include "adapter.h"
#include "fb_common.h"

#include <ctype.h>
#include <string.h>

/* Order numbers are read over the phone and appear in logs: printable ASCII
 * without spaces. */
bool intake_token_like(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)s[i]))
            return false;
    return true;
}

bool intake_phone_like(const char *s) {
    size_t n = strlen(s), digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i]))
            digits++;
        else if (!(s[i] == '+' && i == 0) && s[i] != '-' && s[i] != ' ')
            return false;
    }
    return digits >= 3 && digits <= 20;
}

/* An optional string member: absent or null → *out NULL. */
int intake_opt_string(const json_t *o, const char *key, const char *field, size_t max,
                      const char **out, fb_refusal_t *err) {
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fb_refuse(err, 422, "invalid_field", field, "%s must be a string", field);
    if (json_string_length(v) > max)
        return fb_refuse(err, 422, "invalid_field", field, "%s is longer than %zu bytes", field,
                         max);
    *out = json_string_value(v);
    return 0;
}
