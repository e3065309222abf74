/* fenboctl_classify.c — the classifier's admin commands: `classify train`
 * (a new model from training_examples, stored in classifier_models: every
 * dispatcher loads it on NOTIFY), `classify eval FILE` (how well a model
 * routes labelled petitions it never saw), `classify text TEXT` (the top 3
 * and why) and `history import FILE` (a city's past work orders as training
 * examples). All run lib/fb_classify.c, the dispatcher's very code. */
#include "fenboctl.h"
#include "fb_classify.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_rule.h"
#include "fb_text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Operators' decisions are few but are the city's own words and its own
 * judgement of the moment: each counts as this many catalogue sentences. */
#define OPERATOR_WEIGHT 3

/* ---- shared helpers ----------------------------------------------------- */

/* Examples whose strings are borrowed (from a PGresult or a file's rows). */
typedef struct exset {
    fb_example_t *ex;
    size_t n, cap;
} exset_t;

static int exset_add(exset_t *s, const char *text, const char *category) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        fb_example_t *ex = realloc(s->ex, cap * sizeof *ex);
        if (!ex)
            return FB_ENOMEM;
        s->ex = ex, s->cap = cap;
    }
    s->ex[s->n++] = (fb_example_t){text, category};
    return 0;
}

static void exset_free(exset_t *s) {
    free(s->ex);
    memset(s, 0, sizeof *s);
}

/* Every training example of a leaf category, operators' decisions weighted.
 * *res holds the strings the set borrows (the caller's: PQclear). */
static int load_examples(ctl_t *ctl, exset_t *s, PGresult **res) {
    if (ctl_query(ctl, "reading training_examples",
                  "SELECT t.text, t.category, t.source FROM training_examples t"
                  " WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.parent_code = t.category)"
                  " ORDER BY t.id",
                  0, NULL, res))
        return CTL_FAIL;
    for (int i = 0; i < PQntuples(*res); i++) {
        int times = strcmp(PQgetvalue(*res, i, 2), "operator") == 0 ? OPERATOR_WEIGHT : 1;
        for (int k = 0; k < times; k++)
            if (exset_add(s, PQgetvalue(*res, i, 0), PQgetvalue(*res, i, 1)))
                return ctl_fail(ctl, "out of memory");
    }
    return CTL_OK;
}

static int parse_folds(ctl_t *ctl, const char *s, int *folds) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (s && (errno || *end || v < 2 || v > 20))
        return ctl_usage(ctl, "--folds must be a whole number in 2..20");
    *folds = (int)v;
    return CTL_OK;
}

/* ---- classify train ----------------------------------------------------- */

/* --ngram-max, --c and --prune over the defaults; train and eval --folds
 * take them so that settings can be compared by measurement. */
#define PARAM_OPTS                                                                                 \
    {"ngram-max", true, NULL}, {"c", true, NULL}, {                                                \
        "prune", true, NULL                                                                        \
    }

static int parse_params(ctl_t *ctl, const ctl_opt_t *opts, size_t nopts,
                        fb_classify_params_t *params) {
    *params = fb_classify_params_default();
    const char *nmax = ctl_opt(opts, nopts, "ngram-max");
    const char *cost = ctl_opt(opts, nopts, "c");
    const char *prune = ctl_opt(opts, nopts, "prune");
    if (nmax && (params->ngram_max = atoi(nmax)) < 1)
        return ctl_usage(ctl, "--ngram-max must be 1 or more");
    if (cost && !((params->c = strtod(cost, NULL)) > 0))
        return ctl_usage(ctl, "--c must be a positive number");
    if (prune && !((params->prune = strtod(prune, NULL)) >= 0))
        return ctl_usage(ctl, "--prune must be a number ≥ 0");
    return CTL_OK;
}

int ctl_cmd_classify_train(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {PARAM_OPTS};
    fb_classify_params_t params;
    int rc = ctl_args_parse(ctl, argc, argv, opts, FB_ARRAY_LEN(opts), NULL, 0, 0, NULL);
    if (rc || (rc = parse_params(ctl, opts, FB_ARRAY_LEN(opts), &params)) != 0)
        return rc;

    exset_t s = {0};
    PGresult *res = NULL, *ins = NULL;
    fb_classifier_t *model = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    char err[256] = "";
    rc = CTL_FAIL;
    if (fb_text_init() != 0) {
        ctl_fail(ctl, "cannot open OpenCC's traditional-to-simplified data (t2s.json)");
        goto done;
    }
    if (ctl_connect(ctl) || load_examples(ctl, &s, &res))
        goto done;
    fprintf(stderr, "training on %zu examples…\n", s.n);
    int64_t t0 = fb_now_us();
    int trc = fb_classifier_train(s.ex, s.n, &params, &model, err, sizeof err);
    if (trc) {
        ctl_fail(ctl, "%s", trc == FB_EINVAL ? err : "out of memory");
        goto done;
    }
    if (fb_classifier_save(model, &buf, &len)) {
        ctl_fail(ctl, "out of memory");
        goto done;
    }
    char n_ex[32], params_json[200], lens[32];
    snprintf(n_ex, sizeof n_ex, "%zu", s.n);
    snprintf(params_json, sizeof params_json,
             "{\"ngram_min\": %d, \"ngram_max\": %d, \"min_df\": %d, \"c\": %g, "
             "\"calibration_folds\": %d, \"prune\": %g}",
             params.ngram_min, params.ngram_max, params.min_df, params.c, params.calibration_folds,
             params.prune);
    snprintf(lens, sizeof lens, "%zu", len);
    const char *values[] = {n_ex, params_json, (const char *)buf};
    const int lengths[] = {0, 0, (int)len};
    const int formats[] = {0, 0, 1};
    ins = PQexecParams(ctl->db,
                       "INSERT INTO classifier_models (examples, params, model)"
                       " VALUES ($1, $2, $3) RETURNING version",
                       3, NULL, values, lengths, formats, 0);
    if (PQresultStatus(ins) != PGRES_TUPLES_OK) {
        ctl_fail(ctl, "storing the model: %s", ctl_pg_error(ctl->db, ins));
        goto done;
    }
    printf("model version %s: %zu categories, %zu examples, %s bytes, trained in %.1f s\n",
           PQgetvalue(ins, 0, 0), fb_classifier_categories(model), s.n, lens,
           (double)(fb_now_us() - t0) / 1e6);
    rc = CTL_OK;
done:
    PQclear(ins);
    PQclear(res);
    free(buf);
    fb_classifier_destroy(&model);
    exset_free(&s);
    fb_text_shutdown();
    return rc;
}

/* ---- classify eval ------------------------------------------------------ */

typedef struct labelled {
    char *text, *norm, *category;
    char **also;
    size_t n_also;
} labelled_t;

static void labelled_free(labelled_t *l, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(l[i].text);
        free(l[i].norm);
        free(l[i].category);
        for (size_t k = 0; k < l[i].n_also; k++)
            free(l[i].also[k]);
        free(l[i].also);
    }
    free(l);
}

/* Reads JSON lines {"text", "category", "also": [...]}; blank lines skipped. */
static int read_labelled(ctl_t *ctl, const char *path, labelled_t **out, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f)
        return ctl_fail(ctl, "%s: %s", path, strerror(errno));
    labelled_t *l = NULL;
    size_t cnt = 0, cap = 0, lineno = 0;
    char *line = NULL;
    size_t linecap = 0;
    int rc = CTL_OK;
    while (getline(&line, &linecap, f) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        const char *text = json_string_value(json_object_get(o, "text"));
        const char *cat = json_string_value(json_object_get(o, "category"));
        if (!o || !text || !cat) {
            json_decref(o);
            rc = ctl_fail(ctl, "%s:%zu: expected {\"text\": …, \"category\": …}", path, lineno);
            break;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 256;
            labelled_t *nl = realloc(l, cap * sizeof *nl);
            if (!nl) {
                json_decref(o);
                rc = ctl_fail(ctl, "out of memory");
                break;
            }
            l = nl;
        }
        labelled_t *e = &l[cnt++];
        memset(e, 0, sizeof *e);
        e->text = strdup(text);
        e->category = strdup(cat);
        const json_t *also = json_object_get(o, "also");
        e->also = calloc(json_array_size(also) + 1, sizeof *e->also);
        for (size_t k = 0; e->also && k < json_array_size(also); k++)
            if (json_is_string(json_array_get(also, k)))
                e->also[e->n_also++] = strdup(json_string_value(json_array_get(also, k)));
        json_decref(o);
        if (fb_text_normalize(e->text, &e->norm) != 0) {
            rc = ctl_fail(ctl, "%s:%zu: text is not valid UTF-8", path, lineno);
            break;
        }
    }
    free(line);
    fclose(f);
    if (rc) {
        labelled_free(l, cnt);
        return rc;
    }
    *out = l;
    *n = cnt;
    return CTL_OK;
}

/* The department the rules choose for a category alone: hotline, no
 * location, no words — what the category itself decides. NULL: manual. */
static const char *dept_of(const fb_ruleset_t *rs, const char *category) {
    fb_rule_input_t in = {.channel = "hotline",
                          .category = category,
                          .content_norm = "",
                          .local_minutes = 600,
                          .urgency = "normal",
                          .kind = "complaint"};
    fb_rule_match_t m;
    return fb_rule_match(rs, &in, &m, NULL, NULL) ? m.department : NULL;
}

static bool acceptable(const labelled_t *l, const char *category) {
    if (strcmp(l->category, category) == 0)
        return true;
    for (size_t k = 0; k < l->n_also; k++)
        if (strcmp(l->also[k], category) == 0)
            return true;
    return false;
}

/* One petition's outcome. */
typedef struct outcome {
    bool top1, top3, plausible; /* plausible: the top category's department is right */
    double confidence;
    int64_t classify_ns;   /* what ranking it cost */
    const char *predicted; /* borrowed from the model, valid while it lives */
    char predicted_copy[32];
} outcome_t;

static void judge(const fb_classifier_t *m, const fb_ruleset_t *rs, const labelled_t *l,
                  outcome_t *o) {
    fb_class_score_t s[3];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n = fb_classifier_classify(m, l->norm, s, 3);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    memset(o, 0, sizeof *o);
    o->classify_ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    if (n == 0)
        return;
    o->confidence = s[0].confidence;
    snprintf(o->predicted_copy, sizeof o->predicted_copy, "%s", s[0].category);
    o->predicted = o->predicted_copy;
    o->top1 = acceptable(l, s[0].category);
    for (size_t k = 0; k < n; k++)
        o->top3 |= acceptable(l, s[k].category);
    const char *want = dept_of(rs, l->category), *got = dept_of(rs, s[0].category);
    o->plausible = o->top1 || (want && got && strcmp(want, got) == 0);
    for (size_t k = 0; !o->plausible && got && k < l->n_also; k++) {
        const char *alt = dept_of(rs, l->also[k]);
        o->plausible = alt && strcmp(alt, got) == 0;
    }
}

typedef struct pair {
    const char *want, *got;
    int n;
} pair_t;

static int cmp_pair(const void *a, const void *b) {
    const pair_t *x = a, *y = b;
    return y->n - x->n;
}

static int cmp_ns(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The median and 99th percentile of the classification cost, in µs. */
static void cost_us(const outcome_t *o, size_t n, double *median, double *p99) {
    int64_t *ns = malloc(n * sizeof *ns);
    *median = *p99 = 0;
    if (!ns)
        return;
    for (size_t i = 0; i < n; i++)
        ns[i] = o[i].classify_ns;
    qsort(ns, n, sizeof *ns, cmp_ns);
    *median = (double)ns[n / 2] / 1000, *p99 = (double)ns[n * 99 / 100] / 1000;
    free(ns);
}

static double pct(size_t a, size_t b) {
    return b ? 100.0 * (double)a / (double)b : 0;
}

int ctl_cmd_classify_eval(ctl_t *ctl, int argc, char **argv) {
    ctl_opt_t opts[] = {
        {"folds", true, NULL}, {"threshold", true, NULL}, {"json", false, NULL}, PARAM_OPTS};
    char *pos[1];
    fb_classify_params_t params;
    int rc = ctl_args_parse(ctl, argc, argv, opts, FB_ARRAY_LEN(opts), pos, 1, 1, NULL);
    if (rc || (rc = parse_params(ctl, opts, FB_ARRAY_LEN(opts), &params)) != 0)
        return rc;
    int folds = 0;
    if ((rc = parse_folds(ctl, ctl_opt(opts, FB_ARRAY_LEN(opts), "folds"), &folds)) != 0)
        return rc;
    double threshold = ctl->cfg.classify_min_confidence;
    const char *ts = ctl_opt(opts, FB_ARRAY_LEN(opts), "threshold");
    if (ts && !((threshold = strtod(ts, NULL)) >= 0 && threshold <= 1))
        return ctl_usage(ctl, "--threshold must be a number in 0..1");
    bool as_json = ctl_opt(opts, FB_ARRAY_LEN(opts), "json") != NULL;

    labelled_t *l = NULL;
    size_t n = 0;
    outcome_t *o = NULL;
    exset_t s = {0};
    PGresult *res = NULL;
    json_t *rules = NULL, *juris = NULL, *days = NULL, *out = NULL;
    fb_ruleset_t *rs = NULL;
    fb_classifier_t *model = NULL;
    pair_t *pairs = NULL;
    char err[256] = "";
    rc = CTL_FAIL;
    if (fb_text_init() != 0) {
        ctl_fail(ctl, "cannot open OpenCC's traditional-to-simplified data (t2s.json)");
        goto done;
    }
    if (read_labelled(ctl, pos[0], &l, &n) != CTL_OK || ctl_connect(ctl))
        goto done;
    if (n == 0) {
        ctl_fail(ctl, "%s holds no petitions", pos[0]);
        goto done;
    }
    if (fb_db_load_routing(ctl->db, &rules, &juris, &days) != 0 ||
        fb_ruleset_from_json(rules, juris, &rs, err, sizeof err) != 0) {
        ctl_fail(ctl, "cannot load the rules: %s", err[0] ? err : ctl_pg_error(ctl->db, NULL));
        goto done;
    }
    o = calloc(n, sizeof *o);
    if (!o) {
        ctl_fail(ctl, "out of memory");
        goto done;
    }
    int version = 0;
    if (folds == 0) {
        if (fb_classifier_load_latest(ctl->db, &model, &version) != 0 || !model) {
            ctl_fail(ctl, "no model to evaluate: run `fenboctl classify train` first");
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            judge(model, rs, &l[i], &o[i]);
    } else {
        /* Each fold is judged by a model trained on the database's examples
         * and the other folds of FILE. */
        if (load_examples(ctl, &s, &res))
            goto done;
        size_t base = s.n;
        for (int k = 0; k < folds; k++) {
            s.n = base;
            for (size_t i = 0; i < n; i++)
                if ((int)(i % (size_t)folds) != k && exset_add(&s, l[i].text, l[i].category)) {
                    ctl_fail(ctl, "out of memory");
                    goto done;
                }
            fprintf(stderr, "fold %d of %d: training on %zu examples…\n", k + 1, folds, s.n);
            fb_classifier_destroy(&model);
            if (fb_classifier_train(s.ex, s.n, &params, &model, err, sizeof err)) {
                ctl_fail(ctl, "training failed: %s", err);
                goto done;
            }
            for (size_t i = 0; i < n; i++)
                if ((int)(i % (size_t)folds) == k)
                    judge(model, rs, &l[i], &o[i]);
        }
    }

    size_t top1 = 0, top3 = 0, plaus = 0, autod = 0, auto_ok = 0;
    for (size_t i = 0; i < n; i++) {
        top1 += o[i].top1, top3 += o[i].top3, plaus += o[i].plausible;
        if (o[i].confidence >= threshold)
            autod++, auto_ok += o[i].plausible;
    }
    /* The most confused pairs: petitions of one category given another. */
    pairs = calloc(n, sizeof *pairs);
    size_t np = 0;
    for (size_t i = 0; pairs && i < n; i++) {
        if (o[i].top1 || !o[i].predicted)
            continue;
        size_t k;
        for (k = 0; k < np; k++)
            if (strcmp(pairs[k].want, l[i].category) == 0 &&
                strcmp(pairs[k].got, o[i].predicted) == 0)
                break;
        if (k == np)
            pairs[np++] = (pair_t){l[i].category, o[i].predicted, 0};
        pairs[k].n++;
    }
    if (pairs)
        qsort(pairs, np, sizeof *pairs, cmp_pair);

    double med_us, p99_us;
    cost_us(o, n, &med_us, &p99_us);
    static const double sweep[] = {0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7};
    if (as_json) {
        json_t *table = json_array(), *conf = json_array();
        for (size_t t = 0; t < FB_ARRAY_LEN(sweep); t++) {
            size_t a = 0, ok = 0;
            for (size_t i = 0; i < n; i++)
                if (o[i].confidence >= sweep[t])
                    a++, ok += o[i].plausible;
            json_array_append_new(table,
                                  json_pack("{s:f,s:f,s:f}", "threshold", sweep[t], "auto_routed",
                                            pct(a, n) / 100, "plausible_of_all", pct(ok, n) / 100));
        }
        for (size_t k = 0; k < np && k < 10; k++)
            json_array_append_new(conf, json_pack("{s:s,s:s,s:i}", "category", pairs[k].want,
                                                  "predicted", pairs[k].got, "n", pairs[k].n));
        out =
            json_pack("{s:I,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:o,s:o}", "n", (json_int_t)n,
                      "model_version", version, "folds", folds, "top1", pct(top1, n) / 100, "top3",
                      pct(top3, n) / 100, "plausible_department", pct(plaus, n) / 100, "threshold",
                      threshold, "auto_routed", pct(autod, n) / 100, "plausible_of_auto_routed",
                      pct(auto_ok, autod) / 100, "thresholds", table, "confused", conf);
        if (out) {
            json_object_set_new(out, "classify_median_us", json_real(med_us));
            json_object_set_new(out, "classify_p99_us", json_real(p99_us));
        }
        char *str = out ? json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (!str) {
            ctl_fail(ctl, "out of memory");
            goto done;
        }
        printf("%s\n", str);
        free(str);
        rc = CTL_OK;
        goto done;
    }
    if (folds)
        printf("%s: %zu petitions, %d-fold (each fold judged by a model trained on the database's "
               "examples and the other folds)\n",
               pos[0], n, folds);
    else
        printf("%s: %zu petitions, model version %d (trained without them)\n", pos[0], n, version);
    printf("  top-1 category             %5.1f%%\n", pct(top1, n));
    printf("  top-3 categories           %5.1f%%\n", pct(top3, n));
    printf("  plausible department       %5.1f%%   (the top category's department is right)\n",
           pct(plaus, n));
    printf("  at threshold %.2f: %5.1f%% routed by the model, %5.1f%% of those plausibly; "
           "%5.1f%% of all petitions routed plausibly with no human\n",
           threshold, pct(autod, n), pct(auto_ok, autod), pct(auto_ok, n));
    printf("  classification cost        median %.1f µs, p99 %.1f µs per petition\n", med_us,
           p99_us);
    printf("\n  threshold  routed  plausible of all  wrong of all\n");
    for (size_t t = 0; t < FB_ARRAY_LEN(sweep); t++) {
        size_t a = 0, ok = 0;
        for (size_t i = 0; i < n; i++)
            if (o[i].confidence >= sweep[t])
                a++, ok += o[i].plausible;
        printf("  %9.2f  %5.1f%%  %15.1f%%  %11.1f%%\n", sweep[t], pct(a, n), pct(ok, n),
               pct(a - ok, n));
    }
    if (np)
        printf("\n  most confused (category → taken for)\n");
    for (size_t k = 0; k < np && k < 10; k++) {
        const char *codes[2] = {pairs[k].want, pairs[k].got};
        PGresult *nr = NULL;
        if (ctl_query(ctl, "naming categories",
                      "SELECT (SELECT name FROM categories WHERE code = $1),"
                      "       (SELECT name FROM categories WHERE code = $2)",
                      2, codes, &nr) == 0)
            printf("  %3d × %s %s → %s %s\n", pairs[k].n, pairs[k].want, PQgetvalue(nr, 0, 0),
                   pairs[k].got, PQgetvalue(nr, 0, 1));
        PQclear(nr);
    }
    rc = CTL_OK;
done:
    json_decref(out);
    json_decref(rules);
    json_decref(juris);
    json_decref(days);
    fb_ruleset_destroy(&rs);
    fb_classifier_destroy(&model);
    labelled_free(l, n);
    free(o);
    free(pairs);
    PQclear(res);
    exset_free(&s);
    fb_text_shutdown();
    return rc;
}

/* ---- classify text ------------------------------------------------------ */

int ctl_cmd_classify_text(ctl_t *ctl, int argc, char **argv) {
    char *pos[1];
    int rc = ctl_args_parse(ctl, argc, argv, NULL, 0, pos, 1, 1, NULL);
    if (rc)
        return rc;
    fb_classifier_t *model = NULL;
    char *norm = NULL;
    rc = CTL_FAIL;
    int version = 0;
    if (fb_text_init() != 0) {
        ctl_fail(ctl, "cannot open OpenCC's traditional-to-simplified data (t2s.json)");
        goto done;
    }
    if (fb_text_normalize(pos[0], &norm) != 0) {
        rc = ctl_usage(ctl, "the text is not valid UTF-8");
        goto done;
    }
    if (ctl_connect(ctl))
        goto done;
    if (fb_classifier_load_latest(ctl->db, &model, &version) != 0 || !model) {
        ctl_fail(ctl, "no model: run `fenboctl classify train` first");
        goto done;
    }
    fb_class_score_t s[3];
    size_t n = fb_classifier_classify(model, norm, s, 3);
    printf("text:  %s\nmodel: version %d (routes at confidence ≥ %.2f)\n", norm, version,
           ctl->cfg.classify_min_confidence);
    for (size_t i = 0; i < n; i++) {
        const char *params[1] = {s[i].category};
        PGresult *nr = NULL;
        ctl_query(ctl, "naming a category", "SELECT name FROM categories WHERE code = $1", 1,
                  params, &nr);
        printf("  %zu. %s %-12s %5.1f%%  ", i + 1, s[i].category,
               nr && PQntuples(nr) ? PQgetvalue(nr, 0, 0) : "?", s[i].confidence * 100);
        PQclear(nr);
        fb_ngram_weight_t w[5];
        size_t nw = fb_classifier_explain(model, norm, s[i].category, w, 5);
        for (size_t k = 0; k < nw; k++)
            printf("%s%s %.2f", k ? ", " : "", w[k].ngram, w[k].weight);
        printf("\n");
    }
    rc = CTL_OK;
done:
    free(norm);
    fb_classifier_destroy(&model);
    fb_text_shutdown();
    return rc;
}
