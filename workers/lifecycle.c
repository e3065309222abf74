/* lifecycle.c — the transition table of the case lifecycle.
 *
 * Adding an action (return, assist, extend, assign, rate, reopen…) means a
 * value in fb_case_action_t, its names below and its rows in s_moves; no
 * other code decides whether a move is legal. */
#include "lifecycle.h"
#include "fb_common.h"

#include <stdio.h>
#include <string.h>

static const char *const s_status_names[FB_CASE_STATUS_COUNT] = {
    [FB_CASE_MANUAL] = "manual",     [FB_CASE_DISPATCHED] = "dispatched",
    [FB_CASE_ACCEPTED] = "accepted", [FB_CASE_REPLIED] = "replied",
    [FB_CASE_RATED] = "rated",       [FB_CASE_CLOSED] = "closed",
    [FB_CASE_RETURNED] = "returned", [FB_CASE_REOPENED] = "reopened",
};

static const struct {
    const char *name;
    const char *event;
} s_actions[FB_CASE_ACTION_COUNT] = {
    [FB_CASE_ACCEPT] = {"accept", "accepted"},
    [FB_CASE_REPLY] = {"reply", "replied"},
};

/* The legal moves. A reopened case (the resident was not satisfied) is
 * signed for again before it can be replied to again. */
static const struct {
    fb_case_status_t from;
    fb_case_action_t action;
    fb_case_status_t to;
} s_moves[] = {
    {FB_CASE_DISPATCHED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED},
    {FB_CASE_REOPENED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED},
    {FB_CASE_ACCEPTED, FB_CASE_REPLY, FB_CASE_REPLIED},
};

const char *fb_case_status_name(fb_case_status_t s) {
    return (unsigned)s < FB_CASE_STATUS_COUNT ? s_status_names[s] : NULL;
}

int fb_case_status_parse(const char *name, fb_case_status_t *out) {
    for (int i = 0; name && i < FB_CASE_STATUS_COUNT; i++) {
        if (strcmp(name, s_status_names[i]) == 0) {
            *out = (fb_case_status_t)i;
            return 0;
        }
    }
    return FB_EINVAL;
}

const char *fb_case_action_name(fb_case_action_t a) {
    return (unsigned)a < FB_CASE_ACTION_COUNT ? s_actions[a].name : NULL;
}

int fb_case_action_parse(const char *name, fb_case_action_t *out) {
    for (int i = 0; name && i < FB_CASE_ACTION_COUNT; i++) {
        if (strcmp(name, s_actions[i].name) == 0) {
            *out = (fb_case_action_t)i;
            return 0;
        }
    }
    return FB_EINVAL;
}

const char *fb_case_action_event(fb_case_action_t a) {
    return (unsigned)a < FB_CASE_ACTION_COUNT ? s_actions[a].event : NULL;
}

int fb_lifecycle_next(fb_case_status_t from, fb_case_action_t action, fb_case_status_t *to) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_moves); i++) {
        if (s_moves[i].from == from && s_moves[i].action == action) {
            *to = s_moves[i].to;
            return 0;
        }
    }
    return FB_EINVAL;
}

bool fb_lifecycle_allowed(fb_case_status_t from, fb_case_action_t action) {
    fb_case_status_t to;
    return fb_lifecycle_next(from, action, &to) == 0;
}

size_t fb_lifecycle_actions(fb_case_status_t from, fb_case_action_t *out, size_t max) {
    size_t n = 0;
    for (int a = 0; a < FB_CASE_ACTION_COUNT; a++) {
        if (!fb_lifecycle_allowed(from, (fb_case_action_t)a))
            continue;
        if (n < max)
            out[n] = (fb_case_action_t)a;
        n++;
    }
    return n;
}

char *fb_lifecycle_refusal(fb_case_status_t from, fb_case_action_t action, char *out,
                           size_t outlen) {
    const char *st = fb_case_status_name(from);
    const char *act = fb_case_action_name(action);
    if (!st)
        st = "unknown";
    if (!act)
        act = "unknown";
    /* "an accepted case", "a dispatched case". */
    const char *article = strchr("aeiou", st[0]) ? "an" : "a";
    int n = snprintf(out, outlen, "cannot %s %s %s case; allowed: ", act, article, st);
    if (n < 0 || (size_t)n >= outlen)
        return out;
    size_t len = (size_t)n;
    fb_case_action_t allowed[FB_CASE_ACTION_COUNT];
    size_t k = fb_lifecycle_actions(from, allowed, FB_ARRAY_LEN(allowed));
    if (k == 0)
        snprintf(out + len, outlen - len, "none");
    for (size_t i = 0; i < k && len < outlen; i++) {
        n = snprintf(out + len, outlen - len, "%s%s", i ? ", " : "",
                     fb_case_action_name(allowed[i]));
        if (n < 0)
            break;
        len += (size_t)n;
    }
    return out;
}
