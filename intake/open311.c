/* open311.c — the Open311 GeoReport v2 channel (http://wiki.open311.org/
 * GeoReport_v2) under /open311/v2/: routing, service discovery, the service
 * list (the category tree), service definitions, and the two output formats.
 *
 * Every endpoint answers in the format its path's suffix names (.json or
 * .xml; no suffix is no resource), and so do its errors, in the spec's own
 * error body rather than fenbo's {"error": …}. The XML is the spec's
 * mapping of the JSON ("Spark convention"), made from the same jansson tree
 * so that both formats always say the same thing. POST requests lives in
 * open311_post.c, the reads that need PostgreSQL in open311_read.c. */
#include "fb_common.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_text.h"
#include "open311_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "/open311/v2/"

/* When the interface this file describes last changed (discovery's
 * changeset): clients compare it to decide whether to re-read. */
#define CHANGESET "2026-11-22T00:00:00+08:00"

/* ---- output ---------------------------------------------------------------- */

/* The element name of an array's items, by the array's name. */
static const char *singular(const char *plural) {
    static const char *const names[][2] = {
        {"services", "service"}, {"service_requests", "request"},
        {"errors", "error"},     {"attributes", "attribute"},
        {"values", "value"},     {"endpoints", "endpoint"},
        {"formats", "format"},
    };
    for (size_t i = 0; i < FB_ARRAY_LEN(names); i++)
        if (strcmp(plural, names[i][0]) == 0)
            return names[i][1];
    return "item";
}

/* Escapes s for element content. Characters XML 1.0 cannot carry at all
 * (C0 controls but tab and line breaks, U+FFFE, U+FFFF) are dropped: a
 * parser would refuse the whole document for one of them. */
static void xml_text(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
                break;
            if (p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF)) {
                p += 2;
                break;
            }
            fputc(*p, f);
        }
    }
}

static void xml_value(FILE *f, const char *name, const json_t *v) {
    if (json_is_null(v) || !v) {
        fprintf(f, "<%s/>", name);
        return;
    }
    fprintf(f, "<%s>", name);
    if (json_is_object(v)) {
        const char *k;
        const json_t *m;
        json_object_foreach((json_t *)v, k, m) {
            xml_value(f, k, m);
        }
    } else if (json_is_array(v)) {
        size_t i;
        const json_t *m;
        const char *item = singular(name);
        json_array_foreach(v, i, m) {
            xml_value(f, item, m);
        }
    } else if (json_is_string(v)) {
        xml_text(f, json_string_value(v));
    } else if (json_is_integer(v)) {
        fprintf(f, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%.12g", json_real_value(v));
    } else {
        fputs(json_is_true(v) ? "true" : "false", f);
    }
    fprintf(f, "</%s>", name);
}

char *intake_open311_xml(const char *root, const json_t *j) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n", f);
    xml_value(f, root, j);
    fputc('\n', f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    return buf;
}

void intake_open311_respond(fb_http_req_t *req, unsigned status, open311_fmt_t fmt,
                            const char *root, json_t *j) {
    char *body = NULL;
    if (j && fmt == OPEN311_XML)
        body = intake_open311_xml(root, j);
    else if (j)
        /* Twelve significant digits keep coordinates to a tenth of a
         * millimetre without binary noise (30.210000000000001). */
        body = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12) | JSON_ENCODE_ANY);
    json_decref(j);
    if (!body) {
        static const char oom_json[] = "[{\"code\":503,\"description\":\"out of memory\"}]";
        static const char oom_xml[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<errors><error>"
                                      "<code>503</code><description>out of memory</description>"
                                      "</error></errors>\n";
        if (fmt == OPEN311_XML)
            fb_http_respond(req, 503, "text/xml; charset=utf-8", oom_xml, sizeof oom_xml - 1);
        else
            fb_http_respond(req, 503, "application/json; charset=utf-8", oom_json,
                            sizeof oom_json - 1);
        return;
    }
    fb_http_respond(req, status,
                    fmt == OPEN311_XML ? "text/xml; charset=utf-8"
                                       : "application/json; charset=utf-8",
                    body, strlen(body));
    free(body);
}

/* Cuts a string that snprintf truncated back to its last whole UTF-8
 * character: jansson refuses a string with half a character. */
static void utf8_trim(char *s) {
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < need)
        s[i - 1] = '\0';
}

char *intake_open311_clip(const char *s, char *out, size_t outlen) {
    snprintf(out, outlen, "%s", s);
    utf8_trim(out);
    return out;
}

static void add_error_v(json_t *errors, unsigned code, const char *desc_fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void add_error_v(json_t *errors, unsigned code, const char *desc_fmt, va_list ap) {
    char desc[512];
    vsnprintf(desc, sizeof desc, desc_fmt, ap);
    utf8_trim(desc);
    json_array_append_new(errors, json_pack("{s:i,s:s}", "code", (int)code, "description", desc));
}

void intake_open311_add_error(json_t *errors, unsigned code, const char *desc_fmt, ...) {
    va_list ap;
    va_start(ap, desc_fmt);
    add_error_v(errors, code, desc_fmt, ap);
    va_end(ap);
}

void intake_open311_error(fb_http_req_t *req, open311_fmt_t fmt, unsigned status,
                          const char *desc_fmt, ...) {
    json_t *errors = json_array();
    va_list ap;
    va_start(ap, desc_fmt);
    if (errors)
        add_error_v(errors, status, desc_fmt, ap);
    va_end(ap);
    intake_open311_respond(req, status, fmt, "errors", errors);
}

char *intake_open311_time(int64_t epoch_s, char *out, size_t outlen) {
    time_t t = (time_t)epoch_s;
    struct tm tm;
    char base[32] = "", tz[8] = "+0000";
    if (localtime_r(&t, &tm)) {
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        strftime(tz, sizeof tz, "%z", &tm);
    }
    snprintf(out, outlen, "%s%.3s:%s", base, tz, tz + 3);
    return out;
}

void intake_open311_count(intake_t *in, fb_http_req_t *req) {
    if (fb_http_answered(req))
        in->m.requests[fb_http_status(req) / 100 % 6]++;
}

bool intake_open311_wrong_jurisdiction(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                                       const char *jurisdiction_id) {
    if (!jurisdiction_id || !*jurisdiction_id ||
        strcmp(jurisdiction_id, in->cfg.open311_jurisdiction) == 0)
        return false;
    intake_open311_error(req, fmt, 404,
                         "jurisdiction_id provided was not found: this server answers for %s",
                         in->cfg.open311_jurisdiction);
    return true;
}

/* ---- services: the category tree ------------------------------------------ */

/* One service per category that has no subcategories: those are what a
 * resident reports; the inner nodes are the groups. only: just that code
 * (NULL: all). Returns a new array, or NULL when out of memory. */
static json_t *services_build(intake_t *in, const char *only) {
    const json_t *cats = intake_directory_categories(in->dir);
    json_t *out = json_array();
    fb_map_t *by_code = fb_map_new(), *parents = fb_map_new();
    if (!out || !by_code || !parents)
        goto fail;
    size_t i;
    const json_t *c;
    json_array_foreach(cats, i, c) {
        const char *code = json_string_value(json_object_get(c, "code"));
        const char *parent = json_string_value(json_object_get(c, "parent_code"));
        if (code && fb_map_put(by_code, code, (void *)c, NULL) != 0)
            goto fail;
        if (parent && fb_map_put(parents, parent, (void *)1, NULL) != 0)
            goto fail;
    }
    json_array_foreach(cats, i, c) {
        const char *code = json_string_value(json_object_get(c, "code"));
        const char *name = json_string_value(json_object_get(c, "name"));
        if (!code || !name || fb_map_get(parents, code) || (only && strcmp(code, only) != 0))
            continue;
        /* The path from the root, for the group, keywords and description;
         * the depth bound guards against a cycle in the table. */
        const json_t *path[16];
        size_t depth = 0;
        for (const json_t *p = c; p && depth < FB_ARRAY_LEN(path);) {
            path[depth++] = p;
            const char *pc = json_string_value(json_object_get(p, "parent_code"));
            p = pc ? fb_map_get(by_code, pc) : NULL;
        }
        char desc[1024] = "", keywords[1024] = "";
        size_t dl = 0, kl = 0;
        for (size_t k = depth; k-- > 0;) {
            const char *n = json_string_value(json_object_get(path[k], "name"));
            n = n ? n : "";
            bool first = k == depth - 1;
            int a = snprintf(desc + dl, sizeof desc - dl, "%s%s", first ? "" : " › ", n);
            int b = snprintf(keywords + kl, sizeof keywords - kl, "%s%s", first ? "" : ",", n);
            dl = a > 0 && (size_t)a < sizeof desc - dl ? dl + (size_t)a : dl;
            kl = b > 0 && (size_t)b < sizeof keywords - kl ? kl + (size_t)b : kl;
        }
        const char *group = json_string_value(json_object_get(path[depth - 1], "name"));
        json_t *s = json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:s?}", "service_code", code,
                              "service_name", name, "description", desc, "metadata", 1, "type",
                              "realtime", "keywords", keywords, "group", group);
        if (!s || json_array_append_new(out, s) != 0)
            goto fail;
    }
    fb_map_destroy(&by_code, NULL);
    fb_map_destroy(&parents, NULL);
    return out;
fail:
    fb_map_destroy(&by_code, NULL);
    fb_map_destroy(&parents, NULL);
    json_decref(out);
    return NULL;
}

json_t *intake_open311_service(intake_t *in, const char *code) {
    json_t *list = services_build(in, code);
    json_t *s = json_incref(json_array_get(list, 0));
    json_decref(list);
    return s;
}

bool intake_open311_service_known(intake_t *in, const char *code) {
    if (!intake_directory_categories(in->dir))
        return intake_directory_category_known(in->dir, code);
    json_t *s = intake_open311_service(in, code);
    json_decref(s);
    return s != NULL;
}

json_t *intake_open311_attributes(void) {
    return json_pack("[{s:b,s:s,s:s,s:b,s:s,s:i,s:s},"
                     " {s:b,s:s,s:s,s:b,s:n,s:i,s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}]",
                     "variable", 1, "code", "address_detail", "datatype", "string", "required", 0,
                     "datatype_description", "最多 200 字，例如：3 号楼东侧、公交站台旁", "order",
                     1, "description", "详细位置：门牌号、楼栋或附近的标志物", "variable", 1,
                     "code", "urgency", "datatype", "singlevaluelist", "required", 0,
                     "datatype_description", "order", 2, "description", "紧急程度（默认一般）",
                     "values", "key", "normal", "name", "一般", "key", "urgent", "name", "紧急",
                     "key", "emergency", "name", "特急：危及人身或财产安全");
}

static void get_services(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt) {
    json_t *list = services_build(in, NULL);
    if (!list) {
        intake_open311_error(req, fmt, 503, "out of memory");
        return;
    }
    intake_open311_respond(req, 200, fmt, "services", list);
}

static void get_service_definition(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt,
                                   const char *code) {
    json_t *s = intake_open311_service(in, code);
    if (!s) {
        intake_open311_error(req, fmt, 404, "service_code provided was not found: %s", code);
        return;
    }
    json_decref(s);
    intake_open311_respond(
        req, 200, fmt, "service_definition",
        json_pack("{s:s,s:o}", "service_code", code, "attributes", intake_open311_attributes()));
}

/* ---- discovery ------------------------------------------------------------- */

/* Printable ASCII without spaces: a Host header fit to be echoed. */
static bool host_like(const char *s) {
    if (!s || !*s || strlen(s) > 255)
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == '/' || *s == '"' || *s == '<' || *s == '>')
            return false;
    return true;
}

/* The endpoint's URL as clients reach it: [open311] public_url when set (the
 * address behind a TLS-terminating proxy), else the scheme the proxy says
 * (X-Forwarded-Proto: https) and the Host asked for. */
static void get_discovery(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt) {
    char url[400];
    const char *host = fb_http_header(req, "Host");
    const char *proto = fb_http_header(req, "X-Forwarded-Proto");
    const char *pub = in->cfg.open311_public_url;
    if (pub && *pub) {
        size_t n = strlen(pub);
        snprintf(url, sizeof url, "%.*s" PREFIX, (int)(n && pub[n - 1] == '/' ? n - 1 : n), pub);
    } else if (host_like(host))
        snprintf(url, sizeof url, "%s://%s" PREFIX,
                 proto && strcmp(proto, "https") == 0 ? "https" : "http", host);
    else
        snprintf(url, sizeof url, "http://%s:%d" PREFIX, in->cfg.intake_address,
                 in->cfg.intake_port);
    char contact[300];
    snprintf(contact, sizeof contact,
             "%s 12345 市民服务热线：电话 12345，或通过本接口提交诉求并凭编号查询办理进度",
             in->cfg.open311_jurisdiction);
    json_t *d = json_pack(
        "{s:s,s:s,s:s,s:[{s:s,s:s,s:s,s:s,s:[s,s]}]}", "changeset", CHANGESET, "contact", contact,
        "key_service",
        "api_key 由 12345 热线管理员签发（fenboctl token create --role open311），"
        "每个应用一个",
        "endpoints", "specification", "http://wiki.open311.org/GeoReport_v2", "url", url,
        "changeset", CHANGESET, "type", "production", "formats", "application/json", "text/xml");
    intake_open311_respond(req, 200, fmt, "discovery", d);
}

/* ---- routing --------------------------------------------------------------- */

typedef enum { R_DISCOVERY, R_SERVICES, R_SERVICE, R_REQUESTS, R_REQUEST, R_TOKEN } s_resource_t;

/* The resources, by the path between the prefix and the suffix: with_id
 * takes one more segment after the name ("services/{code}"). */
static const struct {
    const char *name;
    bool with_id;
    bool post; /* POST allowed besides GET */
    s_resource_t r;
} s_resources[] = {
    {"discovery", false, false, R_DISCOVERY}, {"services", false, false, R_SERVICES},
    {"services", true, false, R_SERVICE},     {"requests", false, true, R_REQUESTS},
    {"requests", true, false, R_REQUEST},     {"tokens", true, false, R_TOKEN},
};

void intake_open311_http(intake_t *in, fb_http_req_t *req) {
    const char *path = fb_http_path(req) + strlen(PREFIX);
    char base[512];
    open311_fmt_t fmt = OPEN311_JSON;
    const char *dot = strrchr(path, '.');
    size_t blen = dot ? (size_t)(dot - path) : 0;
    if (dot && strcmp(dot, ".xml") == 0)
        fmt = OPEN311_XML;
    if (!dot || (strcmp(dot, ".json") != 0 && strcmp(dot, ".xml") != 0) || strchr(dot, '/')) {
        intake_open311_error(req, fmt, 404,
                             "no such resource: paths end in .json or .xml, e.g. %sservices.json",
                             PREFIX);
        return;
    }
    if (blen == 0 || blen >= sizeof base) {
        intake_open311_error(req, fmt, 404, "no such resource");
        return;
    }
    memcpy(base, path, blen);
    base[blen] = '\0';
    char *slash = strchr(base, '/');
    const char *id = NULL;
    if (slash) {
        *slash = '\0';
        id = slash + 1;
        if (!*id || strchr(id, '/') || !fb_utf8_valid(id, strlen(id))) {
            intake_open311_error(req, fmt, 404, "no such resource");
            return;
        }
    }
    int found = -1;
    for (size_t i = 0; i < FB_ARRAY_LEN(s_resources); i++)
        if (strcmp(base, s_resources[i].name) == 0 && s_resources[i].with_id == (id != NULL))
            found = (int)i;
    if (found < 0) {
        intake_open311_error(req, fmt, 404,
                             "no such resource: see %sdiscovery.json for what there is", PREFIX);
        return;
    }
    const char *method = fb_http_method(req);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;
    if (!get && !(post && s_resources[found].post)) {
        intake_open311_error(req, fmt, 405, "method %s not allowed here: use %s", method,
                             s_resources[found].post ? "GET or POST" : "GET");
        return;
    }
    if (post) {
        intake_open311_post_request(in, req, fmt);
        return;
    }
    if (intake_open311_wrong_jurisdiction(in, req, fmt, fb_http_query(req, "jurisdiction_id")))
        return;
    switch (s_resources[found].r) {
    case R_DISCOVERY:
        get_discovery(in, req, fmt);
        break;
    case R_SERVICES:
        get_services(in, req, fmt);
        break;
    case R_SERVICE:
        get_service_definition(in, req, fmt, id);
        break;
    case R_REQUESTS:
        intake_open311_get_requests(in, req, fmt, NULL);
        break;
    case R_REQUEST:
        intake_open311_get_requests(in, req, fmt, id);
        break;
    case R_TOKEN:
        intake_open311_get_token(in, req, fmt, id);
        break;
    }
}
