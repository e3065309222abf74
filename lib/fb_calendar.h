/* fb_calendar.h — the working-day calendar (Monday–Friday, less public
 * holidays, plus make-up working days, 调休) and the deadlines computed on it.
 *
 * Times are microseconds since the epoch; days are taken in the process's
 * local time zone (TZ, the city's zone). */
#ifndef FB_CALENDAR_H
#define FB_CALENDAR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct fb_calendar fb_calendar_t;

fb_calendar_t *fb_calendar_new(void);
void fb_calendar_destroy(fb_calendar_t **cal);
/* Records an exception: day "YYYY-MM-DD" is a holiday (workday=false) or a
 * make-up working day (workday=true). */
int fb_calendar_set(fb_calendar_t *cal, const char *day, bool workday);
/* Loads [{"day": …, "kind": "holiday"|"workday"}, …] as calendar_days holds it. */
int fb_calendar_load_json(fb_calendar_t *cal, const json_t *days);

bool fb_calendar_is_workday(const fb_calendar_t *cal, int year, int month, int mday);
/* The moment n working days after start: the same clock time on the n-th
 * working day after start's day. A start outside working days counts from
 * 00:00 of the next working day. */
int64_t fb_calendar_add_workdays(const fb_calendar_t *cal, int64_t start_us, int n);

/* The moment `hours` working hours after start: each hour that begins on a
 * working day counts, hours on weekends and holidays do not (the grid's
 * verification deadline, [grid] verify_hours). */
int64_t fb_calendar_add_work_hours(const fb_calendar_t *cal, int64_t start_us, int hours);

/* Deadlines of a new case. accept_hours/reply_workdays > 0 override the
 * defaults (a rule's own deadlines):
 *   sign for: 1 working day; 2 hours when urgent or emergency;
 *   reply:    24 hours when emergency; 3 working days for consult, help and
 *             praise; 13 working days for complaint, report and suggestion. */
void fb_deadlines(const fb_calendar_t *cal, int64_t start_us, const char *urgency, const char *kind,
                  int accept_hours, int reply_workdays, int64_t *accept_due, int64_t *reply_due);

#endif
