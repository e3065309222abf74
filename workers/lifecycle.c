/* lifecycle.c — the transition table of the case lifecycle.
 *
 * Adding an action means a value in fb_case_action_t, its row in s_actions
 * and its moves in s_moves; no other code decides whether a move is legal. */
#include "lifecycle.h"
#include "fb_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const s_status_names[FB_CASE_STATUS_COUNT] = {
    [FB_CASE_MANUAL] = "manual",     [FB_CASE_DISPATCHED] = "dispatched",
    [FB_CASE_ACCEPTED] = "accepted", [FB_CASE_REPLIED] = "replied",
    [FB_CASE_RATED] = "rated",       [FB_CASE_CLOSED] = "closed",
    [FB_CASE_RETURNED] = "returned", [FB_CASE_REOPENED] = "reopened",
};

#define DEPT     FB_BY_DEPARTMENT
#define OPERATOR FB_BY_OPERATOR
#define RESIDENT FB_BY_RESIDENT
#define FENBO    FB_BY_FENBO

static const struct {
    const char *name;
    const char *event; /* of the usual outcome */
    unsigned by;
} s_actions[FB_CASE_ACTION_COUNT] = {
    [FB_CASE_ACCEPT] = {"accept", "accepted", DEPT},
    [FB_CASE_RETURN] = {"return", "returned", DEPT},
    [FB_CASE_APPROVE_RETURN] = {"approve_return", "redispatched", OPERATOR},
    [FB_CASE_REJECT_RETURN] = {"reject_return", "return_rejected", OPERATOR},
    [FB_CASE_ASSIGN] = {"assign", "assigned", OPERATOR},
    [FB_CASE_ASSIST] = {"assist", "assist_requested", DEPT},
    [FB_CASE_EXTEND] = {"extend", "extension_requested", DEPT},
    [FB_CASE_APPROVE_EXTENSION] = {"approve_extension", "extension_approved", OPERATOR},
    [FB_CASE_REJECT_EXTENSION] = {"reject_extension", "extension_rejected", OPERATOR},
    [FB_CASE_REPLY] = {"reply", "replied", DEPT},
    [FB_CASE_RATE] = {"rate", "rated", RESIDENT},
    [FB_CASE_CALLBACK] = {"callback", "callback_recorded", OPERATOR},
    [FB_CASE_REOPEN] = {"reopen", "reopened", FENBO},
    [FB_CASE_CLOSE] = {"close", "closed", OPERATOR | FENBO},
};

/* The legal moves; event NULL: the action's usual event.
 *
 * - A department returns a case only before signing for it: once it has
 *   signed, the case is its own and it replies (even "not ours, because…").
 *   The return waits in 'returned' for an operator, who approves it (the
 *   rules dispatch again without every department that returned the case,
 *   or it goes to the manual queue), assigns it by hand, or rejects it (the
 *   department must sign for it after all).
 * - Assisting departments, extensions and the reply belong to the signed
 *   case; a reopened case is signed for again first.
 * - A rating comes in for a replied case (intake writes that move itself,
 *   in SQL: replied → rated); the ratings job then closes the case or, when
 *   the resident is unsatisfied, reopens it. An operator may close a case
 *   that is waiting for ratings, or one in the manual queue that no
 *   department should take (a duplicate, nonsense). */
static const struct {
    fb_case_status_t from;
    fb_case_action_t action;
    fb_case_status_t to;
    const char *event;
} s_moves[] = {
    {FB_CASE_DISPATCHED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED, NULL},
    {FB_CASE_REOPENED, FB_CASE_ACCEPT, FB_CASE_ACCEPTED, NULL},
    {FB_CASE_DISPATCHED, FB_CASE_RETURN, FB_CASE_RETURNED, NULL},
    {FB_CASE_RETURNED, FB_CASE_APPROVE_RETURN, FB_CASE_DISPATCHED, "redispatched"},
    {FB_CASE_RETURNED, FB_CASE_APPROVE_RETURN, FB_CASE_MANUAL, "manual"},
    {FB_CASE_RETURNED, FB_CASE_REJECT_RETURN, FB_CASE_DISPATCHED, NULL},
    {FB_CASE_MANUAL, FB_CASE_ASSIGN, FB_CASE_DISPATCHED, NULL},
    {FB_CASE_RETURNED, FB_CASE_ASSIGN, FB_CASE_DISPATCHED, NULL},
    {FB_CASE_ACCEPTED, FB_CASE_ASSIST, FB_CASE_ACCEPTED, NULL},
    {FB_CASE_ACCEPTED, FB_CASE_EXTEND, FB_CASE_ACCEPTED, NULL},
    {FB_CASE_ACCEPTED, FB_CASE_APPROVE_EXTENSION, FB_CASE_ACCEPTED, NULL},
    {FB_CASE_ACCEPTED, FB_CASE_REJECT_EXTENSION, FB_CASE_ACCEPTED, NULL},
    {FB_CASE_ACCEPTED, FB_CASE_REPLY, FB_CASE_REPLIED, NULL},
    {FB_CASE_REPLIED, FB_CASE_RATE, FB_CASE_RATED, NULL},
    {FB_CASE_RATED, FB_CASE_RATE, FB_CASE_RATED, NULL},
    {FB_CASE_REPLIED, FB_CASE_CALLBACK, FB_CASE_RATED, NULL},
    {FB_CASE_RATED, FB_CASE_CALLBACK, FB_CASE_RATED, NULL},
    {FB_CASE_RATED, FB_CASE_REOPEN, FB_CASE_REOPENED, NULL},
    /* A grid worker found the "resolved" untrue on site (核查): reopened
     * before the residents are asked. */
    {FB_CASE_REPLIED, FB_CASE_REOPEN, FB_CASE_REOPENED, NULL},
    {FB_CASE_RATED, FB_CASE_CLOSE, FB_CASE_CLOSED, NULL},
    {FB_CASE_REPLIED, FB_CASE_CLOSE, FB_CASE_CLOSED, NULL},
    {FB_CASE_MANUAL, FB_CASE_CLOSE, FB_CASE_CLOSED, NULL},
};

static const char *const s_part_names[FB_PART_STATUS_COUNT] = {
    [FB_PART_ASSIGNED] = "assigned",
    [FB_PART_ACCEPTED] = "accepted",
    [FB_PART_REPLIED] = "replied",
};

static const struct {
    fb_part_status_t from;
    fb_case_action_t action;
    fb_part_status_t to;
    const char *event;
} s_part_moves[] = {
    {FB_PART_ASSIGNED, FB_CASE_ACCEPT, FB_PART_ACCEPTED, "assist_accepted"},
    {FB_PART_ACCEPTED, FB_CASE_REPLY, FB_PART_REPLIED, "assist_replied"},
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

unsigned fb_case_action_by(fb_case_action_t a) {
    return (unsigned)a < FB_CASE_ACTION_COUNT ? s_actions[a].by : 0;
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

int fb_lifecycle_move(fb_case_status_t from, fb_case_action_t action, fb_case_status_t to,
                      const char **event) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_moves); i++) {
        if (s_moves[i].from == from && s_moves[i].action == action && s_moves[i].to == to) {
            if (event)
                *event = s_moves[i].event ? s_moves[i].event : s_actions[action].event;
            return 0;
        }
    }
    return FB_EINVAL;
}

bool fb_lifecycle_allowed(fb_case_status_t from, fb_case_action_t action) {
    fb_case_status_t to;
    return fb_lifecycle_next(from, action, &to) == 0;
}

size_t fb_lifecycle_actions(fb_case_status_t from, unsigned by, fb_case_action_t *out, size_t max) {
    size_t n = 0;
    for (int a = 0; a < FB_CASE_ACTION_COUNT; a++) {
        if (!(s_actions[a].by & by) || !fb_lifecycle_allowed(from, (fb_case_action_t)a))
            continue;
        if (n < max)
            out[n] = (fb_case_action_t)a;
        n++;
    }
    return n;
}

/* Appends to out (holding *len bytes) without overrunning it. */
static void append(char *out, size_t outlen, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *out, size_t outlen, size_t *len, const char *fmt, ...) {
    if (*len >= outlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, outlen - *len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *len = (size_t)n >= outlen - *len ? outlen : *len + (size_t)n;
}

/* "an accepted", "a dispatched". */
static const char *article(const char *word) {
    return strchr("aeiou", word[0]) ? "an" : "a";
}

char *fb_lifecycle_refusal(fb_case_status_t from, fb_case_action_t action, char *out,
                           size_t outlen) {
    const char *st = fb_case_status_name(from);
    const char *act = fb_case_action_name(action);
    size_t len = 0;
    if (!outlen)
        return out;
    out[0] = '\0';
    if (!st)
        st = "unknown";
    if (!act)
        act = "unknown";
    append(out, outlen, &len, "cannot %s %s ", act, article(st));
    append(out, outlen, &len, "%s case; allowed: ", st);
    fb_case_action_t allowed[FB_CASE_ACTION_COUNT];
    size_t k = fb_lifecycle_actions(from, FB_BY_DEPARTMENT | FB_BY_OPERATOR, allowed,
                                    FB_ARRAY_LEN(allowed));
    if (k == 0)
        append(out, outlen, &len, "none");
    for (size_t i = 0; i < k; i++)
        append(out, outlen, &len, "%s%s", i ? ", " : "", fb_case_action_name(allowed[i]));
    return out;
}

const char *fb_part_status_name(fb_part_status_t s) {
    return (unsigned)s < FB_PART_STATUS_COUNT ? s_part_names[s] : NULL;
}

fb_part_status_t fb_part_status_of(bool accepted, bool replied) {
    return replied ? FB_PART_REPLIED : accepted ? FB_PART_ACCEPTED : FB_PART_ASSIGNED;
}

int fb_lifecycle_part_next(fb_part_status_t from, fb_case_action_t action, fb_part_status_t *to,
                           const char **event) {
    for (size_t i = 0; i < FB_ARRAY_LEN(s_part_moves); i++) {
        if (s_part_moves[i].from == from && s_part_moves[i].action == action) {
            *to = s_part_moves[i].to;
            if (event)
                *event = s_part_moves[i].event;
            return 0;
        }
    }
    return FB_EINVAL;
}

bool fb_lifecycle_parts_open(fb_case_status_t s) {
    return s == FB_CASE_DISPATCHED || s == FB_CASE_ACCEPTED || s == FB_CASE_REOPENED;
}

char *fb_lifecycle_part_refusal(fb_case_status_t case_status, fb_part_status_t from,
                                fb_case_action_t action, char *out, size_t outlen) {
    const char *act = fb_case_action_name(action);
    const char *cst = fb_case_status_name(case_status);
    const char *pst = fb_part_status_name(from);
    size_t len = 0;
    if (!outlen)
        return out;
    out[0] = '\0';
    if (!act)
        act = "unknown";
    if (!cst)
        cst = "unknown";
    if (!pst)
        pst = "unknown";
    if (!fb_lifecycle_parts_open(case_status)) {
        append(out, outlen, &len, "cannot %s an assist part of %s ", act, article(cst));
        append(out, outlen, &len, "%s case", cst);
        return out;
    }
    append(out, outlen, &len, "cannot %s %s ", act, article(pst));
    append(out, outlen, &len, "%s assist part; allowed: ", pst);
    size_t k = 0;
    for (size_t i = 0; i < FB_ARRAY_LEN(s_part_moves); i++) {
        if (s_part_moves[i].from != from)
            continue;
        append(out, outlen, &len, "%s%s", k++ ? ", " : "",
               fb_case_action_name(s_part_moves[i].action));
    }
    if (k == 0)
        append(out, outlen, &len, "none");
    return out;
}
