/* mailbox.c — placeholder until the mailbox channel lands. */
#include "fb_log.h"
#include "intake.h"

int intake_mailbox_start(intake_t *in) {
    if (in->cfg.maildir && *in->cfg.maildir)
        fb_log(FB_LOG_WARN, "event=mailbox_unavailable maildir=%s", in->cfg.maildir);
    return 0;
}

void intake_mailbox_stop(intake_t *in) {
    (void)in;
}
