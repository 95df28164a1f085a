/*
 * privacy - the smtpd_privacy_flags words (sendmail's PrivacyOptions).
 */
#include <string.h>
#include <strings.h>

#include "config.h"
#include "privacy.h"

/* sendmail's words */
static const struct {
    const char *word;
    unsigned flags;
} privacy_words[] = {
    {"public", 0},
    {"needmailhelo", PRIVACY_NEEDMAILHELO},
    {"needexpnhelo", PRIVACY_NEEDEXPNHELO},
    {"needvrfyhelo", PRIVACY_NEEDVRFYHELO},
    {"noexpn", PRIVACY_NOEXPN},
    {"novrfy", PRIVACY_NOVRFY},
    {"noverb", PRIVACY_NOVERB},
    {"noetrn", PRIVACY_NOETRN},
    {"noreceipts", PRIVACY_NORECEIPTS},
    {"nobodyreturn", PRIVACY_NOBODYRETURN},
    {"authwarnings", PRIVACY_AUTHWARNINGS},
    {"restrictmailq", PRIVACY_RESTRICTMAILQ},
    {"restrictqrun", PRIVACY_RESTRICTQRUN},
    {"restrictexpand", PRIVACY_RESTRICTEXPAND},
    {"goaway", PRIVACY_GOAWAY},
};

#define PRIVACY_WORD_COUNT (sizeof(privacy_words) / sizeof(privacy_words[0]))

/* privacy_flags_known - every word of the table */
void privacy_flags_known(buf_t *out)
{
    for (size_t k = 0; k < PRIVACY_WORD_COUNT; k++)
        buf_printf(out, "%s%s", k ? ", " : "", privacy_words[k].word);
}

/* privacy_flags_parse - sendmail matches the words case-insensitively */
int privacy_flags_parse(char *const *words, size_t count, unsigned *flags, const char **bad)
{
    for (size_t i = 0; i < count; i++) {
        size_t k = 0;
        while (k < PRIVACY_WORD_COUNT && strcasecmp(privacy_words[k].word, words[i]) != 0)
            k++;
        if (k == PRIVACY_WORD_COUNT) {
            *bad = words[i];
            return -1;
        }
        *flags |= privacy_words[k].flags;
    }
    return 0;
}

int privacy_flags_get(const struct config *cfg, unsigned *flags, buf_t *err)
{
    size_t count = 0;
    char *const *words = config_list(cfg, "smtpd_privacy_flags", &count);
    const char *bad = NULL;

    *flags = 0;
    if (privacy_flags_parse(words, count, flags, &bad) == 0)
        return 0;
    buf_printf(err, "%s: smtpd_privacy_flags: unknown flag '%s' (known: ",
               config_origin(cfg, "smtpd_privacy_flags"), bad);
    privacy_flags_known(err);
    buf_puts(err, ")");
    return -1;
}
