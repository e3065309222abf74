/* fenbo-load.c — benchmark load generator for the fenbo pipeline.
 *
 * Posts hotline work orders to fenbo-intake over C keep-alive HTTP connections
 * (libcurl multi interface, at most one request in flight per connection) and
 * listens on the dispatcher's PUB socket for the assignment events, so that it
 * measures both what a client sees (submit → 202) and what the city sees
 * (submit → assignment published). Everything runs in one thread: libcurl's
 * poll also watches the ZeroMQ socket's descriptor, so that an event is
 * timestamped when it arrives and not when the HTTP side next goes idle.
 *
 * With --rate the load is open loop: order i is due at t0 + i/R whether or not
 * earlier orders have been answered, and its latency is counted from when it
 * was due, not from when a free connection finally took it. Otherwise a slow
 * server would hide its own queueing from the measurement ("coordinated
 * omission"). Without --rate every connection sends its next order as soon as
 * the previous one is answered, and latency is counted from that moment. */
#include "fb_bus.h"
#include "fb_common.h"
#include "fb_time.h"
#include "load.h"

#include <curl/curl.h>
#include <jansson.h>
#include <zmq.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_US 1000000
#define TICK_US     100000 /* longest sleep: how soon a signal or a deadline is noticed */
#define SUB_WAIT_MS 2000   /* how long to wait for the PUB socket before warning */

/* ------------------------------------------------------------------ orders */

/* The demo city's categories (config/demo/categories.json leaves) with a
 * typical complaint each; kind is how an operator would file it. */
static const struct {
    const char *category;
    const char *kind;
    const char *content;
} samples[] = {
    {"010101", "complaint",
     "小区门口有流动摊贩长期占道经营，晚上油烟和噪音很大，行人只能走机动车道。"},
    {"010102", "complaint", "楼顶有住户私自搭建彩钢板房，存在安全隐患，希望相关部门尽快核查拆除。"},
    {"010103", "complaint", "垃圾桶已经满了三天没人清运，天气热臭味很重，苍蝇很多。"},
    {"010105", "complaint", "楼道里堆满了杂物和废旧家具，把消防通道都堵住了。"},
    {"010202", "help", "单元电梯经常停运，家里老人上下楼很不方便，物业一直说在等配件。"},
    {"010301", "complaint", "新交付的房子墙面开裂、卫生间渗水，开发商拒绝维修。"},
    {"010302", "complaint", "附近工地的渣土车不盖篷布，沿路撒落泥土，一下雨全是泥浆。"},
    {"010401", "help", "路边大树枝叶把路灯和交通信号灯都挡住了，请安排修剪。"},
    {"020101", "help", "今天早上开始整栋楼停水，没有收到任何停水通知。"},
    {"020103", "help", "人行道下面的水管破裂漏水，水一直往外冒，已经流到马路上。"},
    {"020201", "help", "小区晚上突然停电，已经两个小时了还没有恢复。"},
    {"020302", "help", "申请燃气报装两个多月了，一直没有人上门安装。"},
    {"020401", "complaint", "窨井冒出污水，满地污水臭气熏天，居民出门都要绕着走。"},
    {"020402", "help", "下雨后地下通道严重积水，车辆和行人都无法通行。"},
    {"030101", "complaint", "路面出现一个大坑，电动车经过很容易摔倒，已经有人受伤。"},
    {"030102", "help", "这一段路灯已经坏了一个星期，晚上漆黑一片，走路很不安全。"},
    {"030103", "help", "人行道上的井盖丢失了，只放了一个锥桶，小孩经过很危险。"},
    {"030301", "complaint", "小区消防通道长期被私家车占用，物业劝说无效。"},
    {"030302", "help", "路口信号灯故障，一直闪黄灯，早高峰交通很混乱。"},
    {"040101", "complaint", "工地夜间施工到凌晨两点，噪音严重影响周边居民休息。"},
    {"040103", "complaint", "楼下酒吧每天晚上音乐声很大，吵得人睡不着觉。"},
    {"040201", "complaint", "楼下饭店油烟直排，家里窗户都不敢开。"},
    {"040301", "complaint", "河道里漂浮着大量垃圾，河水发黑发臭。"},
};

static const char *const streets[] = {"人民路", "解放路", "中山路", "建设路", "文化路",
                                      "和平路", "新华路", "胜利路", "江滨路", "望江路",
                                      "学院路", "光明路", "朝阳路", "春晖路", "滨河路"};
static const char *const places[] = {"小区",   "公寓",   "菜市场",       "公交站",
                                     "幼儿园", "商业街", "社区服务中心", "路口"};
static const char *const surnames[] = {"王", "李", "张", "刘", "陈", "杨", "黄", "赵",
                                       "吴", "周", "徐", "孙", "马", "朱", "胡", "郭"};
static const char *const closings[] = {"", "希望尽快处理。", "已经反映过好几次了，请尽快解决。",
                                       "请相关部门来现场看看。", "麻烦尽快回复。"};

/* ------------------------------------------------------ tracking numbers */

static volatile sig_atomic_t stop_requests;
bool load_output_failed;

void load_say(FILE *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(f, fmt, ap) < 0)
        load_output_failed = true;
    va_end(ap);
}

static void on_signal(int sig) {
    (void)sig;
    stop_requests++;
}

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xorshift64*: the generator only has to vary the orders, cheaply. */
static uint64_t rnd(load_t *L) {
    L->rng ^= L->rng >> 12;
    L->rng ^= L->rng << 25;
    L->rng ^= L->rng >> 27;
    return L->rng * 2685821657736338717ULL;
}

static size_t rnd_below(load_t *L, size_t n) {
    return (size_t)(rnd(L) % n);
}

static double rnd_unit(load_t *L) {
    return (double)(rnd(L) >> 11) / 9007199254740992.0;
}

/* ----------------------------------------------------------- track map */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int map_grow(track_map_t *m) {
    size_t cap = m->cap ? m->cap * 2 : 1024;
    track_t *b = calloc(cap, sizeof *b);
    if (!b)
        return FB_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->b[i].tracking_no)
            continue;
        size_t j = hash_str(m->b[i].tracking_no) & (cap - 1);
        while (b[j].tracking_no)
            j = (j + 1) & (cap - 1);
        b[j] = m->b[i];
    }
    free(m->b);
    m->b = b;
    m->cap = cap;
    return 0;
}

/* Finds tracking_no, or adds it (copied) with order -1 and *created set.
 * Returns NULL only when out of memory. */
static track_t *map_get(track_map_t *m, const char *tracking_no, bool *created) {
    if ((m->len + 1) * 2 > m->cap && map_grow(m) != 0)
        return NULL;
    size_t j = hash_str(tracking_no) & (m->cap - 1);
    while (m->b[j].tracking_no) {
        if (strcmp(m->b[j].tracking_no, tracking_no) == 0) {
            *created = false;
            return &m->b[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    char *key = strdup(tracking_no);
    if (!key)
        return NULL;
    m->b[j] = (track_t){.tracking_no = key, .order = -1};
    m->len++;
    *created = true;
    return &m->b[j];
}

static void map_free(track_map_t *m) {
    for (size_t i = 0; i < m->cap; i++)
        free(m->b[i].tracking_no);
    free(m->b);
    *m = (track_map_t){0};
}

/* ------------------------------------------------------------- results */

static bool is_measured(const load_t *L, long i) {
    return i >= L->warmup;
}

static void order_published(load_t *L, long i, int64_t t, uint8_t asg) {
    order_t *o = &L->orders[i];
    o->t_pub = t;
    o->asg = asg;
    L->cnt[is_measured(L, i)].published++;
    if (is_measured(L, i) && t > L->t_last_pub)
        L->t_last_pub = t;
}

/* The intake said order i has this tracking number. */
static int order_tracked(load_t *L, long i, const char *tracking_no) {
    bool created;
    track_t *t = map_get(&L->map, tracking_no, &created);
    if (!t)
        return FB_ENOMEM;
    if (created) {
        t->order = i;
    } else if (t->order < 0) {
        /* The assignment was published before the HTTP answer reached us. */
        t->order = i;
        order_published(L, i, t->t_pub, t->asg);
    } else {
        L->collisions++;
    }
    return 0;
}

static uint8_t status_index(load_t *L, const char *s) {
    if (!s)
        return 0;
    for (int k = 1; k < L->nstatuses; k++)
        if (strcmp(L->statuses[k], s) == 0)
            return (uint8_t)k;
    if (L->nstatuses == MAX_STATUSES)
        return 0;
    (void)snprintf(L->statuses[L->nstatuses], sizeof L->statuses[0], "%s", s);
    return (uint8_t)L->nstatuses++;
}

/* ------------------------------------------------------------------ HTTP */

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
    slot_t *s = ud;
    size_t len = size * n, room = RESP_MAX - 1 - s->resp_len;
    /* Keep what fits: a 202 body is tiny; a larger one is an error page. */
    memcpy(s->resp + s->resp_len, data, len < room ? len : room);
    s->resp_len += len < room ? len : room;
    return len;
}

/* Builds order i's JSON body into *out (the caller's, free()). */
static int order_body(load_t *L, long i, char **out) {
    char order_no[160], received_at[40], name[32], phone[16], address[96], content[512];
    size_t k = rnd_below(L, FB_ARRAY_LEN(samples));

    (void)snprintf(order_no, sizeof order_no, "%s-%07ld", L->prefix, i);
    fb_time_format(fb_now_us(), received_at, sizeof received_at);
    (void)snprintf(name, sizeof name, "%s%s", surnames[rnd_below(L, FB_ARRAY_LEN(surnames))],
                   rnd_below(L, 2) ? "先生" : "女士");
    (void)snprintf(phone, sizeof phone, "1%c%09" PRIu64, "3456789"[rnd_below(L, 7)],
                   rnd(L) % UINT64_C(1000000000));
    (void)snprintf(address, sizeof address, "%s%zu号%s",
                   streets[rnd_below(L, FB_ARRAY_LEN(streets))], 1 + rnd_below(L, 300),
                   places[rnd_below(L, FB_ARRAY_LEN(places))]);
    (void)snprintf(content, sizeof content, "%s附近，%s%s", address, samples[k].content,
                   closings[rnd_below(L, FB_ARRAY_LEN(closings))]);
    /* Inside the demo city's box (30.20–30.32 N, 120.10–120.26 E), off its edges. */
    double lat = 30.201 + rnd_unit(L) * 0.118, lng = 120.101 + rnd_unit(L) * 0.158;

    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:{s:f, s:f, s:s}, s:s, s:s, s:b}",
                          "order_no", order_no, "received_at", received_at, "caller", "name", name,
                          "phone", phone, "content", content, "address", address, "location", "lat",
                          lat, "lng", lng, "crs", "wgs84", "urgency", "normal", "kind",
                          samples[k].kind, "callback", rnd_below(L, 10) < 3);
    if (!o)
        return FB_ENOMEM;
    /* A share of the orders come as free text, as residents' calls do. */
    if ((long)rnd_below(L, 100) >= L->free_text_pct &&
        json_object_set_new(o, "category", json_string(samples[k].category)) != 0) {
        json_decref(o);
        return FB_ENOMEM;
    }
    *out = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(o);
    return *out ? 0 : FB_ENOMEM;
}

static int slot_start(load_t *L, long order, int64_t t_sched) {
    slot_t *s = &L->slots[L->idle[L->nidle - 1]];
    free(s->body);
    s->body = NULL;
    if (order_body(L, order, &s->body) != 0)
        return FB_ENOMEM;
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    s->resp_len = 0;
    s->order = order;
    L->orders[order].t_sched = t_sched;
    if (curl_multi_add_handle(L->multi, s->easy) != CURLM_OK) {
        s->order = -1;
        return FB_EIO;
    }
    L->nidle--;
    L->inflight++;
    L->cnt[is_measured(L, order)].sent++;
    return 0;
}

/* Records the answer to the transfer in slot s and makes the slot idle. */
static int slot_done(load_t *L, slot_t *s, CURLcode rc, int64_t now) {
    long i = s->order, code = 0, connects = 0;
    order_t *o = &L->orders[i];
    bool measured = is_measured(L, i);
    int err = 0;

    curl_multi_remove_handle(L->multi, s->easy);
    curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &connects);
    L->connects += connects;
    o->t_ack = now;
    if (rc != CURLE_OK) {
        o->http = -1;
        if (measured)
            L->curl_err[rc]++;
        L->cnt[measured].errors++;
        goto done;
    }
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    o->http = (int16_t)(code > 0 && code < 600 ? code : 0);
    if (measured)
        L->http[o->http]++;
    if (code < 200 || code > 299) {
        L->cnt[measured].errors++;
        goto done;
    }
    json_t *body = json_loadb(s->resp, s->resp_len, 0, NULL);
    const char *tn = json_string_value(json_object_get(body, "tracking_no"));
    if (!tn || !*tn) {
        /* Count it as an error: without a tracking number it cannot be matched. */
        o->http = 0;
        if (measured)
            L->bad_answers++;
        L->cnt[measured].errors++;
    } else {
        L->cnt[measured].acked++;
        if (measured && now > L->t_last_ack)
            L->t_last_ack = now;
        err = order_tracked(L, i, tn);
    }
    json_decref(body);
done:
    s->order = -1;
    L->idle[L->nidle++] = s - L->slots;
    L->inflight--;
    return err;
}

static int http_collect(load_t *L) {
    CURLMsg *m;
    int left, err = 0;
    while ((m = curl_multi_info_read(L->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        slot_t *s = (slot_t *)priv;
        CURLcode rc = m->data.result;
        if (slot_done(L, s, rc, mono_us()) != 0)
            err = FB_ENOMEM;
    }
    return err;
}

static int64_t due_at(const load_t *L, long i) {
    long k = i - (L->measuring ? L->warmup : 0);
    return L->t0 + (int64_t)((double)k * 1e6 / L->rate);
}

/* Hands due orders to idle connections. */
static int http_start_due(load_t *L) {
    while (L->nidle > 0 && L->next < L->phase_end && !stop_requests) {
        int64_t now = mono_us(), t = now;
        if (L->rate > 0) {
            t = due_at(L, L->next);
            if (t > now)
                break;
        }
        int err = slot_start(L, L->next, t);
        if (err != 0)
            return err;
        L->next++;
    }
    return 0;
}

/* Orders that are due but wait for a free connection. */
static long backlog(const load_t *L, int64_t now) {
    if (L->rate <= 0 || now < L->t0)
        return 0;
    long base = L->measuring ? L->warmup : 0;
    long due = base + (long)((double)(now - L->t0) * L->rate / 1e6) + 1;
    if (due > L->phase_end)
        due = L->phase_end;
    return due > L->next ? due - L->next : 0;
}

static int http_setup(load_t *L) {
    char auth[1024];
    if (L->token) {
        (void)snprintf(auth, sizeof auth, "Authorization: Bearer %s", L->token);
        L->headers = curl_slist_append(L->headers, auth);
    }
    L->headers = curl_slist_append(L->headers, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before the body. */
    L->headers = curl_slist_append(L->headers, "Expect:");
    if (!L->headers)
        return FB_ENOMEM;

    L->multi = curl_multi_init();
    L->slots = calloc((size_t)L->conns, sizeof *L->slots);
    L->idle = calloc((size_t)L->conns, sizeof *L->idle);
    if (!L->multi || !L->slots || !L->idle)
        return FB_ENOMEM;
    /* Exactly C connections, each kept open and reused, one request at a time. */
    curl_multi_setopt(L->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, L->conns);
    curl_multi_setopt(L->multi, CURLMOPT_MAX_HOST_CONNECTIONS, L->conns);
    curl_multi_setopt(L->multi, CURLMOPT_MAXCONNECTS, L->conns);
    curl_multi_setopt(L->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);

    for (long k = 0; k < L->conns; k++) {
        slot_t *s = &L->slots[k];
        s->order = -1;
        s->easy = curl_easy_init();
        if (!s->easy)
            return FB_ENOMEM;
        curl_easy_setopt(s->easy, CURLOPT_URL, L->url);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, L->headers);
        curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)(L->timeout_s * 1000));
        curl_easy_setopt(s->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        L->idle[L->nidle++] = k;
    }
    return 0;
}

static void http_teardown(load_t *L) {
    for (long k = 0; L->slots && k < L->conns; k++) {
        slot_t *s = &L->slots[k];
        if (s->easy && s->order >= 0)
            curl_multi_remove_handle(L->multi, s->easy);
        if (s->easy)
            curl_easy_cleanup(s->easy);
        free(s->body);
    }
    if (L->multi)
        curl_multi_cleanup(L->multi);
    curl_slist_free_all(L->headers);
    free(L->slots);
    free(L->idle);
}

/* ------------------------------------------------------------------- bus */

static void bus_event(load_t *L, int64_t now) {
    size_t len;
    const char *data;
    if (L->msg->n != 4 || !fb_bus_frame_is(L->msg, 1, FB_BUS_VERSION) ||
        !fb_bus_frame_is(L->msg, 2, "ASG") || !(data = fb_bus_frame(L->msg, 3, &len))) {
        L->bad_events++;
        return;
    }
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *tn = json_string_value(json_object_get(j, "tracking_no"));
    if (!tn || !*tn) {
        L->bad_events++;
        goto done;
    }
    L->events++;
    bool created;
    track_t *t = map_get(&L->map, tn, &created);
    if (!t)
        goto done; /* out of memory: the order shows as never published */
    uint8_t asg = status_index(L, json_string_value(json_object_get(j, "status")));
    if (t->order < 0) {
        if (created) {
            /* Before the HTTP answer, or not ours at all (another client). */
            t->t_pub = now;
            t->asg = asg;
        }
    } else if (L->orders[t->order].t_pub == 0) {
        order_published(L, t->order, now, asg);
    }
done:
    json_decref(j);
}

/* Reads every waiting event. ZMQ_FD is edge-triggered, so the socket is read
 * until ZMQ_EVENTS says there is nothing left before we poll on it again. */
static void bus_drain(load_t *L) {
    if (!L->sub)
        return;
    for (;;) {
        int rc = fb_bus_recv(L->sub, L->msg, ZMQ_DONTWAIT);
        if (rc == 0) {
            bus_event(L, mono_us());
            fb_bus_msg_close(L->msg);
            continue;
        }
        int ev = 0;
        size_t evlen = sizeof ev;
        if (zmq_getsockopt(L->sub, ZMQ_EVENTS, &ev, &evlen) != 0 || !(ev & ZMQ_POLLIN))
            return;
    }
}

/* Connects the SUB socket and waits until its handshake with the publisher is
 * done, so that the first petitions' events are not lost to the slow-joiner
 * race. The monitor is set up before connecting, or it could miss the event. */
static int bus_connect(load_t *L) {
    char ep[64];
    void *mon = NULL;
    (void)snprintf(ep, sizeof ep, "inproc://fenbo-load-monitor-%ld", (long)getpid());
    if (zmq_socket_monitor(L->sub, ep, ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0) {
        mon = zmq_socket(L->zctx, ZMQ_PAIR);
        if (mon && zmq_connect(mon, ep) != 0) {
            zmq_close(mon);
            mon = NULL;
        }
    }
    int rc = 0;
    if (zmq_connect(L->sub, L->sub_endpoint) != 0) {
        load_say(stderr, "fenbo-load: cannot connect to %s: %s\n", L->sub_endpoint,
                 zmq_strerror(errno));
        rc = FB_EIO;
    } else if (mon) {
        zmq_pollitem_t it = {.socket = mon, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, SUB_WAIT_MS) == 1)
            /* The subscription travels right after the handshake; let it land. */
            usleep(100000);
        else
            load_say(stderr,
                     "fenbo-load: warning: no publisher at %s after %d ms; events published "
                     "before it comes up will be missed\n",
                     L->sub_endpoint, SUB_WAIT_MS);
    }
    if (mon) {
        zmq_socket_monitor(L->sub, NULL, 0);
        zmq_close(mon);
    }
    return rc;
}

static int bus_setup(load_t *L) {
    if (!L->sub_endpoint)
        return 0;
    L->msg = malloc(sizeof *L->msg);
    L->zctx = zmq_ctx_new();
    if (!L->msg || !L->zctx)
        return FB_ENOMEM;
    /* A deep queue: a lost event would read as an unpublished petition. */
    L->sub = fb_bus_socket(L->zctx, ZMQ_SUB, 1000000, 1 << 20);
    if (!L->sub || zmq_setsockopt(L->sub, ZMQ_SUBSCRIBE, "", 0) != 0) {
        load_say(stderr, "fenbo-load: zmq: %s\n", zmq_strerror(errno));
        return FB_EIO;
    }
    int zero = 0;
    zmq_setsockopt(L->sub, ZMQ_LINGER, &zero, sizeof zero);
    return bus_connect(L);
}

static void bus_teardown(load_t *L) {
    if (L->sub)
        zmq_close(L->sub);
    if (L->zctx)
        zmq_ctx_term(L->zctx);
    free(L->msg);
}

/* ------------------------------------------------------------------ loop */

static void progress(load_t *L, int64_t now) {
    const counts_t *c = &L->cnt[L->measuring];
    load_say(stderr,
             "fenbo-load: %s%5.1fs sent=%ld acknowledged=%ld published=%ld errors=%ld "
             "inflight=%ld backlog=%ld\n",
             L->measuring ? "" : "warmup ", (double)(now - L->t0) / 1e6, c->sent, c->acked,
             c->published, c->errors, L->inflight, backlog(L, now));
}

static void phase_begin(load_t *L, bool measuring, int64_t now) {
    L->measuring = measuring;
    L->next = measuring ? L->warmup : 0;
    L->phase_end = measuring ? L->norders : L->warmup;
    L->t0 = now;
}

/* Runs the load; returns 0, or a negative FB_E… when it could not go on. */
static int run(load_t *L, int64_t *t_end) {
    int64_t now = mono_us(), next_progress = now + PROGRESS_US, drain_until = 0;
    int handled_stops = 0, err = 0;
    struct curl_waitfd zfd = {.events = CURL_WAIT_POLLIN};
    if (L->sub) {
        size_t len = sizeof zfd.fd;
        zmq_getsockopt(L->sub, ZMQ_FD, &zfd.fd, &len);
    }
    phase_begin(L, L->warmup == 0, now);

    for (;;) {
        int running;
        if ((err = http_start_due(L)) != 0)
            break;
        curl_multi_perform(L->multi, &running);
        if ((err = http_collect(L)) != 0)
            break;
        bus_drain(L);
        if ((err = http_start_due(L)) != 0)
            break;
        now = mono_us();

        if (stop_requests > handled_stops) {
            handled_stops = (int)stop_requests;
            load_say(stderr, "fenbo-load: %s\n",
                     handled_stops == 1 ? "interrupted: finishing requests in flight, "
                                          "interrupt again to stop at once"
                                        : "stopping");
            if (!L->measuring)
                phase_begin(L, true, now); /* report an empty measured phase */
            L->phase_end = L->next;
        }
        if (handled_stops >= 2)
            break;
        if (now >= next_progress) {
            progress(L, now);
            next_progress += PROGRESS_US;
            if (next_progress <= now)
                next_progress = now + PROGRESS_US;
        }
        if (L->next == L->phase_end && L->inflight == 0) {
            if (!L->measuring) {
                phase_begin(L, true, now);
                next_progress = now + PROGRESS_US; /* progress counts from the phase start */
                continue;
            }
            if (!L->sub || L->cnt[1].published >= L->cnt[1].acked)
                break;
            if (!drain_until)
                drain_until = now + (int64_t)(L->drain_timeout_s * 1e6);
            if (now >= drain_until)
                break;
        }

        int64_t wait = TICK_US;
        if (next_progress - now < wait)
            wait = next_progress - now;
        if (L->rate > 0 && L->nidle > 0 && L->next < L->phase_end &&
            due_at(L, L->next) - now < wait)
            wait = due_at(L, L->next) - now;
        if (drain_until && drain_until - now < wait)
            wait = drain_until - now;
        /* Round up: waking a little late beats spinning on a sub-millisecond wait. */
        int ms = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
        curl_multi_poll(L->multi, L->sub ? &zfd : NULL, L->sub ? 1 : 0, ms, NULL);
    }
    *t_end = mono_us();
    progress(L, *t_end);
    return err;
}

int main(int argc, char **argv) {
    load_t L = {.nstatuses = 1, .statuses = {"?"}};
    char *prefix_buf = NULL;
    int status = EXIT_FAILURE;
    int64_t t_end = 0;

    if (load_parse_args(&L, argc, argv, &prefix_buf) != 0) {
        status = EXIT_USAGE;
        goto fail_args;
    }
    if (!L.token)
        load_say(stderr, "fenbo-load: warning: no --token and no FENBO_TOKEN_HOTLINE: "
                         "requests go without Authorization\n");
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        load_say(stderr, "fenbo-load: curl_global_init failed\n");
        goto fail_args;
    }
    L.norders = L.warmup + L.total;
    L.orders = calloc((size_t)L.norders, sizeof *L.orders);
    if (!L.orders) {
        load_say(stderr, "fenbo-load: out of memory for %ld orders\n", L.norders);
        goto fail;
    }
    if (bus_setup(&L) != 0 || http_setup(&L) != 0) {
        load_say(stderr, "fenbo-load: setup failed\n");
        goto fail;
    }
    load_say(stderr, "fenbo-load: %ld petitions (+%ld warmup) to %s over %ld connections%s%s\n",
             L.total, L.warmup, L.url, L.conns, L.sub ? ", events from " : ", no events",
             L.sub ? L.sub_endpoint : "");
    if (run(&L, &t_end) != 0) {
        load_say(stderr, "fenbo-load: out of memory during the run\n");
        goto fail;
    }
    status = load_report(&L, t_end);
fail:
    http_teardown(&L);
    bus_teardown(&L);
    map_free(&L.map);
    free(L.orders);
    curl_global_cleanup();
fail_args:
    free(L.url);
    free(prefix_buf);
    return status;
}
