/*
 * expand - from one recipient to its final targets: aliases (alias_maps,
 * looked up by the case-folded local part, with and without the
 * recipient_delimiter extension), :include: files (read at delivery time),
 * the user's .forward (forward_path), and finally the user's mailbox (or
 * mailbox_command).  Addresses outside mydestination become forwarding
 * targets.
 *
 * Rules: expansion is recursive up to LOCAL_MAX_DEPTH; a local part that
 * comes back on its own path is a loop (bounce 5.4.6), except the direct
 * self-reference "alice: alice, ..." which means alice's own mailbox;
 * duplicate targets are dropped; when alias NAME is expanded and alias
 * owner-NAME exists, everything below NAME gets envelope sender
 * owner-NAME@domain.  |command and /file targets are allowed per source by
 * allow_mail_to_commands / allow_mail_to_files (alias, forward, include) and
 * run as default_privs (aliases), the user (.forward), or the owner of the
 * :include: file (default_privs when root owns it).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "local.h"
#include "log.h"
#include "targets.h"

enum expand_origin { FROM_ALIAS, FROM_FORWARD, FROM_INCLUDE };

struct expand_ctx {
    const struct local_env *env;
    struct local_expansion *out;
    struct delivery_outcome *res; /* set once, on a whole-recipient failure */
    const char *stack[LOCAL_MAX_DEPTH + 2];
    size_t depth;
    int in_luser_relay;
};

/* what a list (alias value, .forward, :include:) item is expanded with */
struct expand_source {
    enum expand_origin origin;
    const struct local_user *privs; /* files and commands run as */
    const char *sender;
    const char *self;    /* local part that owns the list ("" = none) */
    const char *domain;  /* for unqualified items */
    const char *address; /* the address the list belongs to */
};

static void expand_local(struct expand_ctx *c, const char *lp, const char *domain,
                         const char *sender, int mode);
static void expand_list(struct expand_ctx *c, const struct expand_source *s, const char *text);

/* expand_fail - the whole recipient fails (first failure wins) */
static void expand_fail(struct expand_ctx *c, enum delivery_status st, const char *dsn,
                        const char *fmt, const char *arg)
{
    if (c->res->status == DELIVERY_PENDING)
        local_result_set(c->res, st, dsn, fmt, arg);
}

/* local_user_from_name - see local.h */
int local_user_from_name(const char *name, struct local_user *u)
{
    struct passwd *pw = getpwnam(name);

    if (pw == NULL)
        return -1;
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    u->name = xstrdup(pw->pw_name);
    u->home = xstrdup(pw->pw_dir ? pw->pw_dir : "/");
    u->shell = xstrdup(pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
    return 0;
}

/* local_user_copy - deep copy */
void local_user_copy(struct local_user *dst, const struct local_user *src)
{
    dst->uid = src->uid;
    dst->gid = src->gid;
    dst->name = xstrdup(src->name ? src->name : "");
    dst->home = xstrdup(src->home ? src->home : "/");
    dst->shell = xstrdup(src->shell ? src->shell : "/bin/sh");
}

/* local_user_free - release */
void local_user_free(struct local_user *u)
{
    free(u->name);
    free(u->home);
    free(u->shell);
    memset(u, 0, sizeof(*u));
}

/* local_expansion_free - release every target */
void local_expansion_free(struct local_expansion *x)
{
    for (size_t i = 0; i < x->count; i++) {
        struct local_target *t = &x->v[i];
        free(t->what);
        free(t->address);
        free(t->sender);
        free(t->extension);
        local_user_free(&t->user);
        buf_free(&t->result.reason);
    }
    free(x->v);
    memset(x, 0, sizeof(*x));
}

/* expand_is_duplicate - the same kind, destination (and user) already listed */
static int expand_is_duplicate(const struct local_expansion *x, enum local_target_kind kind,
                               const char *what, const struct local_user *u)
{
    for (size_t i = 0; i < x->count; i++) {
        const struct local_target *t = &x->v[i];
        if (t->kind != kind)
            continue;
        if ((kind == TARGET_MAILBOX || kind == TARGET_FORWARD) && strcasecmp(t->what, what) == 0)
            return 1;
        if (strcmp(t->what, what) == 0 && t->user.uid == u->uid)
            return 1;
    }
    return 0;
}

/* expand_add - append a target unless it is a duplicate */
static void expand_add(struct expand_ctx *c, enum local_target_kind kind, const char *what,
                       const char *address, const char *sender, const char *extension,
                       const struct local_user *u)
{
    struct local_expansion *x = c->out;
    struct local_target *t;
    static const struct local_user nobody = {0, 0, NULL, NULL, NULL};

    if (u == NULL)
        u = &nobody;
    if (expand_is_duplicate(x, kind, what, u))
        return;
    if (x->count >= LOCAL_MAX_TARGETS) {
        expand_fail(c, DELIVERY_BOUNCE, "5.3.0", "too many recipients in the expansion of %s",
                    address);
        return;
    }
    if (x->count == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 8;
        x->v = xrealloc(x->v, x->cap * sizeof(*x->v));
    }
    t = &x->v[x->count++];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->what = xstrdup(what);
    t->address = xstrdup(address);
    t->sender = xstrdup(sender);
    t->extension = xstrdup(extension ? extension : "");
    local_user_copy(&t->user, u);
}

/* expand_split_extension - base (user) and extension of a local part */
static void expand_split_extension(const struct local_env *env, const char *lp, buf_t *base,
                                   buf_t *ext)
{
    size_t n = env->delimiter[0] ? strcspn(lp, env->delimiter) : strlen(lp);

    buf_reset(base);
    buf_reset(ext);
    buf_append(base, lp, n);
    if (lp[n] && n > 0)
        buf_puts(ext, lp + n + 1);
    else if (lp[n])
        buf_set(base, lp);
}

/* expand_is_local_domain - the domain is in mydestination */
static int expand_is_local_domain(const struct local_env *env, const char *domain)
{
    return addr_domain_in_list(domain, env->mydestination);
}

/* expand_read_file - a .forward or :include: file, with safety checks;
 * 1 read, 0 absent or refused (logged), -1 error (errno) */
static int expand_read_file(const char *path, uid_t owner, int forward, buf_t *text,
                            uid_t *file_owner)
{
    struct stat st;
    char chunk[8192];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & (forward ? 022 : 002)) ||
        (forward && st.st_uid != owner && st.st_uid != 0) || st.st_size > LOCAL_MAX_LIST_FILE) {
        log_warn("ignoring %s: not a regular file owned by %s, or %s-writable, or too large", path,
                 forward ? "the user or root" : "anyone", forward ? "group/world" : "world");
        close(fd);
        return 0;
    }
    *file_owner = st.st_uid;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0 && text->len < LOCAL_MAX_LIST_FILE)
        buf_append(text, chunk, (size_t)n);
    close(fd);
    return n < 0 ? -1 : 1;
}

/* expand_allowed - is a file/command from this source permitted? */
static int expand_allowed(char *const *list, enum expand_origin o)
{
    static const char *names[] = {"alias", "forward", "include"};
    return local_list_has(list, names[o]);
}

/* expand_shell_ok - the user's shell is listed in /etc/shells */
static int expand_shell_ok(const char *shell)
{
    const char *s;
    int ok = 0;

    setusershell();
    while (!ok && (s = getusershell()) != NULL)
        ok = strcmp(s, shell) == 0;
    endusershell();
    return ok;
}

/* expand_privs_ok - never run a file or command delivery as root; from a
 * .forward only for users with a valid shell (sendmail's rule) */
static int expand_privs_ok(struct expand_ctx *c, const struct expand_source *s, const char *what)
{
    if (s->privs->uid == 0 && geteuid() == 0) {
        expand_fail(c, DELIVERY_BOUNCE, "5.7.1", "refusing to deliver to %s as root", what);
        return 0;
    }
    if (s->origin == FROM_FORWARD && !expand_shell_ok(s->privs->shell)) {
        expand_fail(c, DELIVERY_BOUNCE, "5.7.1",
                    "files and commands in .forward need a shell listed in /etc/shells: %.100s",
                    what);
        return 0;
    }
    return 1;
}

/* expand_include - :include:/path, read now, items expanded as INCLUDE */
static void expand_include(struct expand_ctx *c, const struct expand_source *s, const char *path)
{
    buf_t text = BUF_INIT;
    uid_t owner = 0;
    struct local_user fowner;
    struct passwd *pw;
    struct expand_source inc = *s;
    int rc = expand_read_file(path, 0, 0, &text, &owner);

    if (rc < 0) {
        expand_fail(c, DELIVERY_DEFER, "4.3.0", "cannot read include file %s", path);
    } else if (rc > 0) {
        memset(&fowner, 0, sizeof(fowner));
        pw = owner != 0 ? getpwuid(owner) : NULL;
        char *name = pw ? xstrdup(pw->pw_name) : NULL;
        if (name != NULL && local_user_from_name(name, &fowner) == 0)
            inc.privs = &fowner;
        free(name);
        inc.origin = FROM_INCLUDE;
        inc.self = "";
        expand_list(c, &inc, buf_cstr(&text));
        local_user_free(&fowner);
    }
    buf_free(&text);
}

/* expand_item_address - an address item: local (again through aliases) or
 * forwarded; a direct self-reference means the user's own mailbox */
static void expand_item_address(struct expand_ctx *c, const struct expand_source *s,
                                const char *item)
{
    buf_t addr = BUF_INIT, lp = BUF_INIT;
    const char *domain;

    buf_set(&addr, item);
    if (addr.len >= 2 && addr.data[0] == '<' && addr.data[addr.len - 1] == '>') {
        buf_consume(&addr, 1);
        buf_truncate(&addr, addr.len - 1);
    }
    domain = addr_domain(buf_cstr(&addr));
    if (addr.len == 0 || (domain && *domain == 0)) {
        expand_fail(c, DELIVERY_BOUNCE, "5.1.3", "bad address in the expansion of %s", s->address);
    } else if (domain && !expand_is_local_domain(c->env, domain)) {
        expand_add(c, TARGET_FORWARD, buf_cstr(&addr), s->address, s->sender, "", NULL);
    } else {
        addr_local_part(buf_cstr(&addr), &lp);
        if (s->self[0] && strcasecmp(buf_cstr(&lp), s->self) == 0)
            expand_local(c, buf_cstr(&lp), domain ? domain : s->domain, s->sender,
                         s->origin == FROM_FORWARD ? 2 : 1);
        else
            expand_local(c, buf_cstr(&lp), domain ? domain : s->domain, s->sender, 0);
    }
    buf_free(&addr);
    buf_free(&lp);
}

/* expand_item - one list item by kind */
static void expand_item(struct expand_ctx *c, const struct expand_source *s, const char *item)
{
    const struct local_env *env = c->env;
    const char *what;
    enum local_item_kind kind = local_item_classify(item, &what);

    if (kind == ITEM_COMMAND || kind == ITEM_FILE) {
        int cmd = kind == ITEM_COMMAND;
        if (!expand_allowed(cmd ? env->allow_commands : env->allow_files, s->origin))
            expand_fail(c, DELIVERY_BOUNCE, "5.7.1",
                        cmd ? "mail to command is restricted: %.100s"
                            : "mail to file is restricted: %.100s",
                        what);
        else if (*what && expand_privs_ok(c, s, what))
            expand_add(c, cmd ? TARGET_COMMAND : TARGET_FILE, what, s->address, s->sender, "",
                       s->privs);
    } else if (kind == ITEM_INCLUDE) {
        if (what[0] != '/')
            expand_fail(c, DELIVERY_BOUNCE, "5.3.5", "include file must be an absolute path: %s",
                        what);
        else
            expand_include(c, s, what);
    } else if (kind == ITEM_USER) {
        expand_local(c, what, s->domain, s->sender, 2);
    } else {
        expand_item_address(c, s, what);
    }
}

/* expand_list - every item of an alias value, .forward or include file */
static void expand_list(struct expand_ctx *c, const struct expand_source *s, const char *text)
{
    buf_t item = BUF_INIT;
    const char *p = text;

    while (c->res->status == DELIVERY_PENDING && local_item_next(&p, &item))
        expand_item(c, s, buf_cstr(&item));
    buf_free(&item);
}

/* expand_forward_path - one forward_path item with $home, $user, $local,
 * $extension, $recipient_delimiter, $domain; 0 when it names the extension
 * and there is none (the item is skipped) */
static int expand_forward_path(const char *tmpl, const struct local_user *u, const char *lp,
                               const char *ext, const char *delim, const char *domain, buf_t *out)
{
    static const char *names[] = {"home",  "user", "local", "extension", "recipient_delimiter",
                                  "domain"};
    const char *vals[] = {u->home, u->name, lp, ext, delim, domain};

    for (const char *p = tmpl; *p;) {
        size_t i, n;
        int brace = p[0] == '$' && p[1] == '{';
        if (*p != '$') {
            buf_putc(out, *p++);
            continue;
        }
        for (i = 0; i < 6; i++) {
            n = strlen(names[i]);
            if (strncmp(p + 1 + brace, names[i], n) == 0 && (!brace || p[2 + n] == '}'))
                break;
        }
        if (i == 6) {
            buf_putc(out, *p++);
            continue;
        }
        if (i == 3 && !*ext)
            return 0;
        buf_puts(out, vals[i]);
        p += 1 + n + 2 * brace;
    }
    return 1;
}

/* expand_forward - the first usable forward_path file: 1 used, 0 none */
static int expand_forward(struct expand_ctx *c, const struct local_user *u, const char *lp,
                          const char *ext, const char *domain, const char *sender)
{
    buf_t path = BUF_INIT, text = BUF_INIT, address = BUF_INIT;
    uid_t owner;
    int used = 0;

    for (char *const *f = c->env->forward_path; f && *f && !used; f++) {
        buf_reset(&path);
        buf_reset(&text);
        if (!expand_forward_path(*f, u, lp, ext, c->env->delimiter, domain, &path))
            continue;
        int rc = expand_read_file(buf_cstr(&path), u->uid, 1, &text, &owner);
        if (rc < 0)
            expand_fail(c, DELIVERY_DEFER, "4.3.0", "cannot read %s", buf_cstr(&path));
        if (rc <= 0)
            continue;
        const char *p = buf_cstr(&text);
        buf_t probe = BUF_INIT;
        if (local_item_next(&p, &probe)) { /* an empty .forward is no .forward */
            struct expand_source s = {FROM_FORWARD, u, sender, lp, domain, NULL};
            buf_printf(&address, "%s@%s", lp, domain);
            s.address = buf_cstr(&address);
            used = 1;
            expand_list(c, &s, buf_cstr(&text));
        }
        buf_free(&probe);
    }
    buf_free(&path);
    buf_free(&text);
    buf_free(&address);
    return used;
}

/* expand_luser_relay - unknown user: forward to luser_relay ($user/$local) */
static int expand_luser_relay(struct expand_ctx *c, const char *lp, const char *domain,
                              const char *sender)
{
    buf_t to = BUF_INIT;
    struct local_user none = {0, 0, "", "", ""};
    struct expand_source s = {FROM_ALIAS, &none, sender, "", domain, NULL};

    if (!c->env->luser_relay[0] || c->in_luser_relay)
        return 0;
    expand_forward_path(c->env->luser_relay, &(struct local_user){0, 0, (char *)lp, "", ""}, lp, "",
                        c->env->delimiter, domain, &to);
    buf_t address = BUF_INIT;
    buf_printf(&address, "%s@%s", lp, domain);
    s.address = buf_cstr(&address);
    c->in_luser_relay = 1;
    expand_item_address(c, &s, buf_cstr(&to));
    c->in_luser_relay = 0;
    buf_free(&to);
    buf_free(&address);
    return 1;
}

/* expand_user - a local user: .forward (unless no_forward), else mailbox */
static void expand_user(struct expand_ctx *c, const char *lp, const char *domain,
                        const char *sender, int no_forward)
{
    buf_t base = BUF_INIT, ext = BUF_INIT, lower = BUF_INIT, address = BUF_INIT;
    struct local_user u;

    memset(&u, 0, sizeof(u));
    if (c->env->mail_hub) { /* aliases are done: the user is the hub's */
        buf_printf(&address, "%s@%s", lp, domain);
        expand_add(c, TARGET_FORWARD, buf_cstr(&address), buf_cstr(&address), sender, "", NULL);
        buf_free(&address);
        return;
    }
    expand_split_extension(c->env, lp, &base, &ext);
    for (const char *p = buf_cstr(&base); *p; p++)
        buf_putc(&lower, tolower((unsigned char)*p));
    if (local_user_from_name(buf_cstr(&base), &u) < 0 &&
        local_user_from_name(buf_cstr(&lower), &u) < 0) {
        if (!expand_luser_relay(c, lp, domain, sender))
            expand_fail(c, DELIVERY_BOUNCE, "5.1.1", "unknown user: \"%s\"", lp);
    } else if (no_forward ||
               !expand_forward(c, &u, buf_cstr(&lower), buf_cstr(&ext), domain, sender)) {
        buf_printf(&address, "%s@%s", lp, domain);
        if (c->env->mailbox_command[0])
            expand_add(c, TARGET_COMMAND, c->env->mailbox_command, buf_cstr(&address), sender,
                       buf_cstr(&ext), &u);
        else
            expand_add(c, TARGET_MAILBOX, u.name, buf_cstr(&address), sender, buf_cstr(&ext), &u);
    }
    local_user_free(&u);
    buf_free(&base);
    buf_free(&ext);
    buf_free(&lower);
    buf_free(&address);
}

/* expand_alias_lookup - the alias value of lp (with, then without the
 * extension): 1 found (key set), 0 none, -1 table failure */
static int expand_alias_lookup(struct expand_ctx *c, const char *lp, buf_t *key, buf_t *value)
{
    buf_t ext = BUF_INIT;
    enum table_result r;

    buf_set(key, lp);
    r = table_list_lookup((struct table_list *)&c->env->aliases, lp, value);
    if (r == TABLE_NOTFOUND && c->env->delimiter[0]) {
        expand_split_extension(c->env, lp, key, &ext);
        if (strcmp(buf_cstr(key), lp) != 0)
            r = table_list_lookup((struct table_list *)&c->env->aliases, buf_cstr(key), value);
    }
    buf_free(&ext);
    return r == TABLE_FOUND ? 1 : r == TABLE_NOTFOUND ? 0 : -1;
}

/* expand_owner - owner-NAME@domain when alias owner-NAME exists, else sender */
static void expand_owner(struct expand_ctx *c, const char *name, const char *domain,
                         const char *sender, buf_t *out)
{
    buf_t key = BUF_INIT, value = BUF_INIT;

    buf_printf(&key, "owner-%s", name);
    if (strncmp(name, "owner-", 6) != 0 && table_list_lookup((struct table_list *)&c->env->aliases,
                                                             buf_cstr(&key), &value) == TABLE_FOUND)
        buf_printf(out, "%s@%s", buf_cstr(&key), domain);
    else
        buf_set(out, sender);
    buf_free(&key);
    buf_free(&value);
}

/* expand_alias - lp is alias key: expand its value below it on the stack */
static void expand_alias(struct expand_ctx *c, const char *key, const char *value,
                         const char *domain, const char *sender)
{
    buf_t owner = BUF_INIT, address = BUF_INIT;
    struct local_user privs = {c->env->default_uid, c->env->default_gid,
                               (char *)c->env->default_user, "/", "/bin/sh"};

    expand_owner(c, key, domain, sender, &owner);
    buf_printf(&address, "%s@%s", key, domain);
    struct expand_source s = {FROM_ALIAS, &privs, buf_cstr(&owner),
                              key,        domain, buf_cstr(&address)};
    c->stack[c->depth++] = key;
    expand_list(c, &s, value);
    c->depth--;
    buf_free(&owner);
    buf_free(&address);
}

/* expand_on_stack - 1 when the local part is already being expanded */
static int expand_on_stack(const struct expand_ctx *c, const char *lower)
{
    for (size_t i = 0; i < c->depth; i++)
        if (strcmp(c->stack[i], lower) == 0)
            return 1;
    return 0;
}

/* expand_local - a local part in a local domain.  mode 0: aliases, then
 * the user; 1: no aliases (self-reference in an alias); 2: mailbox only
 * (\user, or a self-reference in a .forward) */
static void expand_local(struct expand_ctx *c, const char *lp, const char *domain,
                         const char *sender, int mode)
{
    buf_t lower = BUF_INIT, key = BUF_INIT, value = BUF_INIT;
    int rc = 0;

    for (const char *p = lp; *p; p++)
        buf_putc(&lower, tolower((unsigned char)*p));
    if (c->depth >= LOCAL_MAX_DEPTH) {
        expand_fail(c, DELIVERY_BOUNCE, "5.4.6", "alias expansion too deep at %s", lp);
    } else if (mode == 0 && expand_on_stack(c, buf_cstr(&lower))) {
        expand_fail(c, DELIVERY_BOUNCE, "5.4.6", "mail forwarding loop for %s", lp);
    } else if (mode == 0 && (rc = expand_alias_lookup(c, buf_cstr(&lower), &key, &value)) != 0) {
        if (rc < 0)
            expand_fail(c, DELIVERY_DEFER, "4.3.0", "alias database unavailable (%s)", lp);
        else
            expand_alias(c, buf_cstr(&key), buf_cstr(&value), domain, sender);
    } else {
        c->stack[c->depth++] = buf_cstr(&lower);
        expand_user(c, lp, domain, sender, mode == 2);
        c->depth--;
    }
    buf_free(&lower);
    buf_free(&key);
    buf_free(&value);
}

/* local_expand - see local.h */
int local_expand(const struct local_env *env, const char *rcpt, const char *sender,
                 struct local_expansion *out, struct delivery_outcome *res)
{
    struct expand_ctx c;
    buf_t lp = BUF_INIT;
    const char *domain = addr_domain(rcpt);

    memset(&c, 0, sizeof(c));
    c.env = env;
    c.out = out;
    c.res = res;
    addr_local_part(rcpt, &lp);
    if (lp.len == 0 || domain == NULL || *domain == 0)
        expand_fail(&c, DELIVERY_BOUNCE, "5.1.3", "bad recipient address %s", rcpt);
    else
        expand_local(&c, buf_cstr(&lp), domain, sender, 0);
    buf_free(&lp);
    if (res->status == DELIVERY_PENDING && out->count == 0)
        local_result_set(res, DELIVERY_BOUNCE, "5.1.1", "no deliverable address in the expansion");
    return res->status == DELIVERY_PENDING ? 0 : -1;
}
