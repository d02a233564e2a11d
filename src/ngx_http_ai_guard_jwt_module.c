
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_util.h"
#include "ngx_http_ai_guard_jwt.h"
#include "ngx_http_ai_guard_jwt_module.h"


#define NGX_HTTP_AI_GUARD_JWT_CACHE_SIZE   4096
#define NGX_HTTP_AI_GUARD_JWT_MAX_TOKEN    16384
#define NGX_HTTP_AI_GUARD_JWT_MAX_JWKS     (1024 * 1024)
#define NGX_HTTP_AI_GUARD_JWT_LEEWAY       30

#define NGX_HTTP_AI_GUARD_JWT_ALG_NAMES                                       \
    "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, HS256, HS384 "   \
    "or HS512"


typedef struct {
    ngx_str_t                      tenant;
    ngx_str_t                      tier;
    ngx_str_t                      key_id;
    ngx_str_t                      models;
} ngx_http_ai_guard_jwt_claim_paths_t;


typedef struct {
    ngx_uint_t                     cache_size;  /* entries a worker keeps */
    ngx_uint_t                     used;        /* "ai_guard_jwt on" seen */
} ngx_http_ai_guard_jwt_main_conf_t;


typedef struct {
    ngx_flag_t                            enable;
    ngx_http_ai_guard_jwks_t             *jwks;
    ngx_str_t                             jwks_file;
    ngx_str_t                             issuer;
    ngx_str_t                             audience;
    ngx_uint_t                            algs;
    time_t                                leeway;
    ngx_http_ai_guard_jwt_claim_paths_t  *claims;
    ngx_str_t                             default_tier;
    ngx_http_ai_guard_tier_t             *default_tier_conf;

    /* what the verifier reads; built at merge where tokens are on */
    ngx_http_ai_guard_jwt_conf_t          conf;

    /* tells the cache entries of one conf from another's, reloads too */
    uint64_t                              id;

    /* the lines of the directives that merge checks */
    ngx_http_ai_guard_where_t             enable_where;
    ngx_http_ai_guard_where_t             jwks_where;
    ngx_http_ai_guard_where_t             tier_where;
} ngx_http_ai_guard_jwt_loc_conf_t;


/* what a token says about its holder; spans into the token or an entry */

typedef struct {
    ngx_str_t                      key_id;
    ngx_str_t                      tenant;
    ngx_str_t                      tier;
    ngx_str_t                      models[NGX_HTTP_AI_GUARD_JWT_MAX_MODELS];
    ngx_uint_t                     nmodels;
    ngx_http_ai_guard_tier_t      *tier_conf;
    time_t                         exp;
} ngx_http_ai_guard_jwt_ident_t;


typedef struct {
    ngx_rbtree_node_t              node;   /* key: the digest's first word */
    ngx_queue_t                    queue;  /* LRU, most recent at the head */
    u_char                         digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    uint64_t                       conf_id;
    ngx_http_ai_guard_jwt_ident_t  ident;  /* strings follow the node */
} ngx_http_ai_guard_jwt_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    lru;
    ngx_uint_t                     n;
    ngx_uint_t                     max;
} ngx_http_ai_guard_jwt_cache_t;


static ngx_int_t ngx_http_ai_guard_jwt_init_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_guard_jwt_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_jwt_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_ai_guard_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_jwt_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);

static char *ngx_http_ai_guard_jwt_flag(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_jwt_default_tier(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_guard_jwt_leeway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_jwt_algorithms(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_guard_jwt_claims(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_guard_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_ai_guard_jwt_jwks_cleanup(void *data);

static ngx_http_ai_guard_jwt_node_t *ngx_http_ai_guard_jwt_cache_get(
    u_char *digest, uint64_t conf_id, time_t now, time_t leeway);
static void ngx_http_ai_guard_jwt_cache_put(u_char *digest,
    uint64_t conf_id, ngx_http_ai_guard_jwt_ident_t *ident, ngx_log_t *log);
static void ngx_http_ai_guard_jwt_cache_delete(
    ngx_http_ai_guard_jwt_node_t *jn);
static void ngx_http_ai_guard_jwt_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ai_guard_key_t *ngx_http_ai_guard_jwt_make_key(
    ngx_pool_t *pool, ngx_http_ai_guard_jwt_ident_t *ident, u_char *digest);


static ngx_command_t  ngx_http_ai_guard_jwt_commands[] = {

    { ngx_string("ai_guard_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_ai_guard_jwt_flag,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_jwt_loc_conf_t, enable),
      NULL },

    { ngx_string("ai_guard_jwt_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_jwt_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_jwt_loc_conf_t, issuer),
      NULL },

    { ngx_string("ai_guard_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_guard_jwt_loc_conf_t, audience),
      NULL },

    { ngx_string("ai_guard_jwt_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_guard_jwt_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_jwt_leeway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_jwt_claims"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_guard_jwt_claims,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_jwt_default_tier"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_jwt_default_tier,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_guard_jwt_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_guard_jwt_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_guard_jwt_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_ai_guard_jwt_create_main_conf, /* create main configuration */
    ngx_http_ai_guard_jwt_init_main_conf,  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_guard_jwt_create_loc_conf, /* create location configuration */
    ngx_http_ai_guard_jwt_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_guard_jwt_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_guard_jwt_module_ctx,     /* module context */
    ngx_http_ai_guard_jwt_commands,        /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ai_guard_jwt_init_process,    /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* per worker: verified tokens, so a signature is checked once a token */

static ngx_http_ai_guard_jwt_cache_t  *ngx_http_ai_guard_jwt_cache_p;

/* in the master, across reloads: every conf that accepts tokens gets one */

static uint64_t  ngx_http_ai_guard_jwt_conf_ids;


static ngx_int_t
ngx_http_ai_guard_jwt_init_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_guard_jwt_cache_t      *cache;
    ngx_http_ai_guard_jwt_main_conf_t  *jmcf;

    jmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_guard_jwt_module);

    if (jmcf == NULL || !jmcf->used || jmcf->cache_size == 0
        || ngx_http_ai_guard_jwt_cache_p != NULL)
    {
        return NGX_OK;
    }

    cache = ngx_alloc(sizeof(ngx_http_ai_guard_jwt_cache_t), cycle->log);
    if (cache == NULL) {
        return NGX_ERROR;
    }

    ngx_rbtree_init(&cache->rbtree, &cache->sentinel,
                    ngx_http_ai_guard_jwt_rbtree_insert_value);
    ngx_queue_init(&cache->lru);

    cache->n = 0;
    cache->max = jmcf->cache_size;

    ngx_http_ai_guard_jwt_cache_p = cache;

    return NGX_OK;
}


static void *
ngx_http_ai_guard_jwt_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_guard_jwt_main_conf_t  *jmcf;

    jmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_jwt_main_conf_t));
    if (jmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     jmcf->used = 0;
     */

    jmcf->cache_size = NGX_CONF_UNSET_UINT;

    return jmcf;
}


static char *
ngx_http_ai_guard_jwt_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ai_guard_jwt_main_conf_t  *jmcf = conf;

    ngx_conf_init_uint_value(jmcf->cache_size,
                             NGX_HTTP_AI_GUARD_JWT_CACHE_SIZE);

    return NGX_CONF_OK;
}


static void *
ngx_http_ai_guard_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_guard_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_jwt_loc_conf_t));
    if (jlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     jlcf->jwks = NULL;
     *     jlcf->jwks_file = { 0, NULL };
     *     jlcf->issuer = { 0, NULL };
     *     jlcf->audience = { 0, NULL };
     *     jlcf->claims = NULL;
     *     jlcf->default_tier = { 0, NULL };
     *     jlcf->default_tier_conf = NULL;
     *     jlcf->conf = { 0 };
     *     jlcf->id = 0;
     */

    jlcf->enable = NGX_CONF_UNSET;
    jlcf->algs = NGX_CONF_UNSET_UINT;
    jlcf->leeway = NGX_CONF_UNSET;

    return jlcf;
}


/*
 * Runs after ngx_http_ai_guard_module's merge (the modules are listed in
 * that order in config), so that module's location conf is final here.
 */

static char *
ngx_http_ai_guard_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_guard_jwt_loc_conf_t *prev = parent;
    ngx_http_ai_guard_jwt_loc_conf_t *conf = child;

    unsigned                            usable;
    ngx_http_ai_guard_loc_conf_t       *alcf;
    ngx_http_ai_guard_main_conf_t      *amcf;
    ngx_http_ai_guard_jwt_main_conf_t  *jmcf;

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable_where = prev->enable_where;
    }

    if (conf->default_tier.data == NULL) {
        conf->tier_where = prev->tier_where;
    }

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->algs, prev->algs,
                              NGX_HTTP_AI_GUARD_JWT_DEFAULT_ALGS);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway,
                             NGX_HTTP_AI_GUARD_JWT_LEEWAY);
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "");
    ngx_conf_merge_str_value(conf->audience, prev->audience, "");
    ngx_conf_merge_str_value(conf->default_tier, prev->default_tier, "");

    if (conf->jwks == NULL) {
        conf->jwks = prev->jwks;
        conf->jwks_file = prev->jwks_file;
        conf->jwks_where = prev->jwks_where;
    }

    if (conf->claims == NULL) {
        conf->claims = prev->claims;
    }

    alcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_ai_guard_module);
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_guard_module);

    if (alcf->enable && amcf->keys == NULL && amcf->store == NULL
        && !conf->enable)
    {
        ngx_http_ai_guard_conf_error(cf, &alcf->enable_where, 0,
                           "\"ai_guard on\" needs a credential to check: "
                           "\"ai_guard_keys <file>\" or "
                           "\"ai_guard_key_store <size>\" in the http "
                           "block, or \"ai_guard_jwt on\" with "
                           "\"ai_guard_jwt_keys\"");
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (conf->jwks == NULL) {
        ngx_http_ai_guard_conf_error(cf, &conf->enable_where, 0,
                           "\"ai_guard_jwt on\" needs "
                           "\"ai_guard_jwt_keys <file>\", the JWKS of the "
                           "tokens' issuer");
        return NGX_CONF_ERROR;
    }

    if ((conf->algs & NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS)
        && !ngx_http_ai_guard_jwks_has_oct(conf->jwks))
    {
        ngx_http_ai_guard_conf_error(cf, &conf->jwks_where, 0,
                           "ai_guard_jwt_algorithms allows HS* but "
                           "ai_guard_jwt_keys \"%V\" has no \"oct\" key: "
                           "list only the algorithms of its keys",
                           &conf->jwks_file);
        return NGX_CONF_ERROR;
    }

    usable = conf->algs & ngx_http_ai_guard_jwks_algs(conf->jwks);

    if (usable == 0) {
        ngx_http_ai_guard_conf_error(cf, &conf->jwks_where, 0,
                           "ai_guard_jwt_keys \"%V\": no key verifies an "
                           "algorithm that ai_guard_jwt_algorithms allows "
                           "(RS256 ES256 by default): list the algorithms "
                           "of its keys", &conf->jwks_file);
        return NGX_CONF_ERROR;
    }

    if (conf->default_tier.len) {
        conf->default_tier_conf = ngx_http_ai_guard_tier_find(amcf,
                                                 conf->default_tier.data,
                                                 conf->default_tier.len);

        if (conf->default_tier_conf == NULL) {
            ngx_http_ai_guard_conf_error(cf, &conf->tier_where, 0,
                               "ai_guard_jwt_default_tier: tier \"%V\" is "
                               "not declared by ai_guard_tier, it must be "
                               "%s", &conf->default_tier,
                               ngx_http_ai_guard_conf_tiers(cf, amcf));
            return NGX_CONF_ERROR;
        }
    }

    conf->conf.algs = usable;
    conf->conf.leeway = conf->leeway;
    conf->conf.issuer.data = conf->issuer.data;
    conf->conf.issuer.len = conf->issuer.len;
    conf->conf.audience.data = conf->audience.data;
    conf->conf.audience.len = conf->audience.len;

    if (conf->claims) {
        conf->conf.tenant.data = conf->claims->tenant.data;
        conf->conf.tenant.len = conf->claims->tenant.len;
        conf->conf.tier.data = conf->claims->tier.data;
        conf->conf.tier.len = conf->claims->tier.len;
        conf->conf.key_id.data = conf->claims->key_id.data;
        conf->conf.key_id.len = conf->claims->key_id.len;
        conf->conf.models.data = conf->claims->models.data;
        conf->conf.models.len = conf->claims->models.len;
    }

    conf->id = ++ngx_http_ai_guard_jwt_conf_ids;

    jmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ai_guard_jwt_module);
    jmcf->used = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_guard_jwt_flag(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_jwt_loc_conf_t *jlcf = conf;

    ngx_http_ai_guard_where(cf, &jlcf->enable_where);

    return ngx_conf_set_flag_slot(cf, cmd, conf);
}


static char *
ngx_http_ai_guard_jwt_default_tier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_guard_jwt_loc_conf_t *jlcf = conf;

    ngx_str_t  *value;

    if (jlcf->default_tier.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    jlcf->default_tier = value[1];

    /* checked at merge: tiers may be declared after it */
    ngx_http_ai_guard_where(cf, &jlcf->tier_where);

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_guard_jwt_leeway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_jwt_loc_conf_t *jlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (jlcf->leeway != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_parse_time(&value[1], 1);

    if (n == NGX_ERROR || n > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_jwt_leeway: invalid time \"%V\", it "
                           "must be a time from 0s to 1d, such as 30s",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    jlcf->leeway = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_guard_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_jwt_loc_conf_t *jlcf = conf;

    char                 err[NGX_HTTP_AI_GUARD_KEYS_ERRLEN];
    u_char              *buf;
    size_t               size;
    ssize_t              n;
    ngx_fd_t             fd;
    ngx_str_t           *value, name;
    ngx_file_info_t      fi;
    ngx_pool_cleanup_t  *cln;

    if (jlcf->jwks) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_ai_guard_where(cf, &jlcf->jwks_where);

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_http_ai_guard_open_error(cf, NULL, "ai_guard_jwt_keys",
                                     &value[1], &name, ngx_errno);
        return NGX_CONF_ERROR;
    }

    buf = NULL;
    size = 0;
    n = -1;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &name);
        goto close;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size == 0 || size > NGX_HTTP_AI_GUARD_JWT_MAX_JWKS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_jwt_keys \"%V\": the file is empty "
                           "or larger than 1m", &name);
        goto close;
    }

    buf = ngx_pnalloc(cf->temp_pool, size);
    if (buf == NULL) {
        goto close;
    }

    n = ngx_read_fd(fd, buf, size);

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", &name);
    }

close:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%V\" failed", &name);
    }

    if (n < 0) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    jlcf->jwks = ngx_http_ai_guard_jwks_parse(buf, n, err, sizeof(err));

    /* a JWKS of HS* secrets is as secret as a key: no copy stays around */
    ngx_explicit_memzero(buf, size);

    if (jlcf->jwks == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_jwt_keys \"%V\": %s", &name, err);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_ai_guard_jwt_jwks_cleanup;
    cln->data = jlcf->jwks;

    jlcf->jwks_file = name;

    if (ngx_http_ai_guard_jwks_skipped(jlcf->jwks)) {
        ngx_conf_log_error(NGX_LOG_NOTICE, cf, 0,
                           "ai_guard_jwt_keys \"%V\": %uz keys, %uz skipped "
                           "(not for signatures, or of an unsupported type)",
                           &name, ngx_http_ai_guard_jwks_count(jlcf->jwks),
                           ngx_http_ai_guard_jwks_skipped(jlcf->jwks));
    }

    return NGX_CONF_OK;
}


static void
ngx_http_ai_guard_jwt_jwks_cleanup(void *data)
{
    ngx_http_ai_guard_jwks_free(data);
}


/* ai_guard_jwt_algorithms RS256 ES256 ...; "none" can never be one */

static char *
ngx_http_ai_guard_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_guard_jwt_loc_conf_t *jlcf = conf;

    unsigned     alg;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (jlcf->algs != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    jlcf->algs = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 4
            && ngx_strncasecmp(value[i].data, (u_char *) "none", 4) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_jwt_algorithms: algorithm \"%V\" "
                               "can never be enabled (a token anyone can "
                               "make), it must be %s", &value[i],
                               NGX_HTTP_AI_GUARD_JWT_ALG_NAMES);
            return NGX_CONF_ERROR;
        }

        alg = ngx_http_ai_guard_jwt_alg(value[i].data, value[i].len);

        if (alg == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_jwt_algorithms: invalid algorithm "
                               "\"%V\", it must be %s", &value[i],
                               NGX_HTTP_AI_GUARD_JWT_ALG_NAMES);
            return NGX_CONF_ERROR;
        }

        jlcf->algs |= alg;
    }

    return NGX_CONF_OK;
}


/* ai_guard_jwt_claims tenant=<path> tier=<path> key_id=<path> models=<path> */

static char *
ngx_http_ai_guard_jwt_claims(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_jwt_loc_conf_t *jlcf = conf;

    u_char                               *eq;
    ngx_str_t                            *value, name, path, *dst;
    ngx_uint_t                            i;
    ngx_http_ai_guard_jwt_claim_paths_t  *claims;

    if (jlcf->claims) {
        return "is duplicate";
    }

    claims = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_jwt_claim_paths_t));
    if (claims == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');
        if (eq == NULL) {
            goto invalid;
        }

        name.data = value[i].data;
        name.len = eq - value[i].data;
        path.data = eq + 1;
        path.len = value[i].data + value[i].len - path.data;

        if (name.len == 6 && ngx_strncmp(name.data, "tenant", 6) == 0) {
            dst = &claims->tenant;

        } else if (name.len == 4 && ngx_strncmp(name.data, "tier", 4) == 0) {
            dst = &claims->tier;

        } else if (name.len == 6 && ngx_strncmp(name.data, "key_id", 6) == 0)
        {
            dst = &claims->key_id;

        } else if (name.len == 6 && ngx_strncmp(name.data, "models", 6) == 0)
        {
            dst = &claims->models;

        } else {
            goto invalid;
        }

        if (dst->len
            || !ngx_http_ai_guard_jwt_claim_path_valid(path.data, path.len))
        {
            goto invalid;
        }

        *dst = path;
    }

    jlcf->claims = claims;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_guard_jwt_claims: invalid claim \"%V\", it must "
                       "be tenant=, tier=, key_id= or models=, each once, "
                       "with a dotted path of at most 8 names, such as "
                       "tenant=app_metadata.tenant", &value[i]);

    return NGX_CONF_ERROR;
}


/* ai_guard_jwt_cache <entries> | off */

static char *
ngx_http_ai_guard_jwt_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_jwt_main_conf_t *jmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (jmcf->cache_size != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        jmcf->cache_size = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n == 0 || n > 1048576) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard_jwt_cache: invalid size \"%V\", it "
                           "must be a number of tokens from 1 to 1048576, "
                           "or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    jmcf->cache_size = n;

    return NGX_CONF_OK;
}


ngx_uint_t
ngx_http_ai_guard_jwt_on(ngx_http_request_t *r)
{
    ngx_http_ai_guard_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_jwt_module);

    return jlcf->enable ? 1 : 0;
}


ngx_uint_t
ngx_http_ai_guard_jwt_is_token(ngx_str_t *s)
{
    u_char      c;
    size_t      i;
    ngx_uint_t  dots;

    /* a JOSE header is a JSON object: its base64url starts with "eyJ" */

    if (s->len < 3 || ngx_strncmp(s->data, "eyJ", 3) != 0) {
        return 0;
    }

    dots = 0;

    for (i = 3; i < s->len; i++) {
        c = s->data[i];

        if (c == '.') {
            dots++;
            continue;
        }

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_')
        {
            continue;
        }

        return 0;
    }

    return dots == 2;
}


ngx_int_t
ngx_http_ai_guard_jwt_authenticate(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_verdict_t *v)
{
    int                                rc;
    u_char                            *scratch;
    u_char                             digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    time_t                             now;
    ngx_uint_t                         i;
    ngx_http_ai_guard_key_t           *key;
    ngx_http_ai_guard_loc_conf_t      *alcf;
    ngx_http_ai_guard_jwt_node_t      *jn;
    ngx_http_ai_guard_main_conf_t     *amcf;
    ngx_http_ai_guard_jwt_ident_t      ident, *id;
    ngx_http_ai_guard_jwt_claims_t     claims;
    ngx_http_ai_guard_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_jwt_module);

    /* the token is never logged: a digest prefix tells tokens apart */

    if (ngx_http_ai_guard_digest(token, 1, digest) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->digest, digest, sizeof(ctx->digest));
    ctx->has_digest = 1;

    now = ngx_time();

    jn = ngx_http_ai_guard_jwt_cache_get(digest, jlcf->id, now,
                                         jlcf->leeway);

    if (jn) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai_guard: token %*xs... from the cache",
                       (size_t) 4, digest);

        ctx->jwt_cached = 1;
        id = &jn->ident;
        goto found;
    }

    if (token->len > NGX_HTTP_AI_GUARD_JWT_MAX_TOKEN) {
        rc = NGX_HTTP_AI_GUARD_JWT_INVALID;
        claims.reason = "token too long";
        goto rejected;
    }

    scratch = ngx_pnalloc(r->pool, token->len);
    if (scratch == NULL) {
        return NGX_ERROR;
    }

    ctx->jwt_verified = 1;

    rc = ngx_http_ai_guard_jwt_verify(jlcf->jwks, &jlcf->conf, token->data,
                                      token->len, now, scratch, token->len,
                                      &claims);

    if (rc == NGX_HTTP_AI_GUARD_JWT_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_guard: token %*xs...: %s", (size_t) 4, digest,
                      claims.reason);
        return NGX_ERROR;
    }

    if (rc != NGX_HTTP_AI_GUARD_JWT_OK) {
        goto rejected;
    }

    ngx_memzero(&ident, sizeof(ngx_http_ai_guard_jwt_ident_t));

    ident.key_id.data = (u_char *) claims.key_id.data;
    ident.key_id.len = claims.key_id.len;
    ident.tenant.data = (u_char *) claims.tenant.data;
    ident.tenant.len = claims.tenant.len;
    ident.tier.data = (u_char *) claims.tier.data;
    ident.tier.len = claims.tier.len;
    ident.exp = (time_t) claims.exp;

    for (i = 0; i < claims.nmodels; i++) {
        ident.models[i].data = (u_char *) claims.models[i].data;
        ident.models[i].len = claims.models[i].len;
    }

    ident.nmodels = claims.nmodels;

    if (ident.tenant.len == 0 || ident.key_id.len == 0
        || ident.tenant.len > NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD
        || ident.key_id.len > NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD)
    {
        rc = NGX_HTTP_AI_GUARD_JWT_INVALID;
        claims.reason = "no usable tenant or key id claim";
        goto rejected;
    }

    if (ident.tier.len) {
        amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);

        ident.tier_conf = ngx_http_ai_guard_tier_find(amcf,
                                                          ident.tier.data,
                                                          ident.tier.len);

        if (ident.tier_conf == NULL) {
            ngx_http_ai_guard_set_verdict(v, NGX_HTTP_FORBIDDEN,
                                          "tier_unknown",
                                          "The bearer token names a tier "
                                          "that this API does not have: "
                                          "ask the API's provider to "
                                          "check the token's tier.");
            return NGX_DECLINED;
        }

    } else if (jlcf->default_tier_conf) {
        ident.tier = jlcf->default_tier;
        ident.tier_conf = jlcf->default_tier_conf;
    }

    ngx_http_ai_guard_jwt_cache_put(digest, jlcf->id, &ident,
                                    r->connection->log);

    id = &ident;

found:

    key = ngx_http_ai_guard_jwt_make_key(r->pool, id, digest);
    if (key == NULL) {
        return NGX_ERROR;
    }

    ctx->key = key;
    ctx->has_digest = 0;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard: token of \"%V\", tenant \"%V\"",
                   &key->id, &key->tenant);

    return NGX_OK;

rejected:

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_guard_module);

    ngx_log_error(alcf->log_level, r->connection->log, 0,
                  "ai_guard: token %*xs...: %s", (size_t) 4, digest,
                  claims.reason ? claims.reason : "invalid");

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_UNAUTHORIZED,
                                  (char *) ngx_http_ai_guard_jwt_code(rc),
                                  (char *) ngx_http_ai_guard_jwt_message(rc));

    return NGX_DECLINED;
}


/* the identity in one allocation, as a key of the keys file looks */

static ngx_http_ai_guard_key_t *
ngx_http_ai_guard_jwt_make_key(ngx_pool_t *pool,
    ngx_http_ai_guard_jwt_ident_t *ident, u_char *digest)
{
    u_char                   *p;
    size_t                    size;
    ngx_uint_t                i;
    ngx_http_ai_guard_key_t  *key;

    size = sizeof(ngx_http_ai_guard_key_t)
           + ident->nmodels * sizeof(ngx_http_ai_guard_str_t)
           + ident->key_id.len + ident->tenant.len + ident->tier.len;

    for (i = 0; i < ident->nmodels; i++) {
        size += ident->models[i].len;
    }

    key = ngx_pcalloc(pool, size);
    if (key == NULL) {
        return NULL;
    }

    ngx_memcpy(key->digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);

    key->models = (ngx_http_ai_guard_str_t *) (key + 1);
    p = (u_char *) (key->models + ident->nmodels);

    key->id.data = p;
    key->id.len = ident->key_id.len;
    p = ngx_cpymem(p, ident->key_id.data, ident->key_id.len);

    key->tenant.data = p;
    key->tenant.len = ident->tenant.len;
    p = ngx_cpymem(p, ident->tenant.data, ident->tenant.len);

    key->tier.data = p;
    key->tier.len = ident->tier.len;
    p = ngx_cpymem(p, ident->tier.data, ident->tier.len);

    for (i = 0; i < ident->nmodels; i++) {
        key->models[i].data = p;
        key->models[i].len = ident->models[i].len;
        p = ngx_cpymem(p, ident->models[i].data, ident->models[i].len);
    }

    key->nmodels = ident->nmodels;
    key->has_models = ident->nmodels ? 1 : 0;
    key->tier_conf = ident->tier_conf;
    key->expires = ident->exp;

    return key;
}


static ngx_http_ai_guard_jwt_node_t *
ngx_http_ai_guard_jwt_cache_get(u_char *digest, uint64_t conf_id,
    time_t now, time_t leeway)
{
    ngx_int_t                       rc;
    ngx_rbtree_key_t                hash;
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_ai_guard_jwt_node_t   *jn;
    ngx_http_ai_guard_jwt_cache_t  *cache;

    cache = ngx_http_ai_guard_jwt_cache_p;

    if (cache == NULL) {
        return NULL;
    }

    ngx_memcpy(&hash, digest, sizeof(ngx_rbtree_key_t));

    node = cache->rbtree.root;
    sentinel = cache->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        jn = (ngx_http_ai_guard_jwt_node_t *) node;

        rc = ngx_memcmp(digest, jn->digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);

        if (rc == 0) {
            rc = (conf_id < jn->conf_id) ? -1 : (conf_id > jn->conf_id);
        }

        if (rc != 0) {
            node = (rc < 0) ? node->left : node->right;
            continue;
        }

        /* expired since it was verified: verify again, for the error */

        if (jn->ident.exp <= now - leeway) {
            ngx_http_ai_guard_jwt_cache_delete(jn);
            return NULL;
        }

        ngx_queue_remove(&jn->queue);
        ngx_queue_insert_head(&cache->lru, &jn->queue);

        return jn;
    }

    return NULL;
}


static void
ngx_http_ai_guard_jwt_cache_put(u_char *digest, uint64_t conf_id,
    ngx_http_ai_guard_jwt_ident_t *ident, ngx_log_t *log)
{
    u_char                         *p;
    size_t                          size;
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    ngx_http_ai_guard_jwt_node_t   *jn;
    ngx_http_ai_guard_jwt_cache_t  *cache;

    cache = ngx_http_ai_guard_jwt_cache_p;

    if (cache == NULL) {
        return;
    }

    if (cache->n >= cache->max) {
        q = ngx_queue_last(&cache->lru);
        ngx_http_ai_guard_jwt_cache_delete(
            ngx_queue_data(q, ngx_http_ai_guard_jwt_node_t, queue));
    }

    size = sizeof(ngx_http_ai_guard_jwt_node_t)
           + ident->key_id.len + ident->tenant.len + ident->tier.len;

    for (i = 0; i < ident->nmodels; i++) {
        size += ident->models[i].len;
    }

    jn = ngx_alloc(size, log);
    if (jn == NULL) {
        return;
    }

    ngx_memcpy(jn->digest, digest, NGX_HTTP_AI_GUARD_DIGEST_LEN);
    ngx_memcpy(&jn->node.key, digest, sizeof(ngx_rbtree_key_t));
    jn->conf_id = conf_id;
    jn->ident = *ident;

    p = (u_char *) (jn + 1);

    jn->ident.key_id.data = p;
    p = ngx_cpymem(p, ident->key_id.data, ident->key_id.len);

    jn->ident.tenant.data = p;
    p = ngx_cpymem(p, ident->tenant.data, ident->tenant.len);

    jn->ident.tier.data = p;
    p = ngx_cpymem(p, ident->tier.data, ident->tier.len);

    for (i = 0; i < ident->nmodels; i++) {
        jn->ident.models[i].data = p;
        p = ngx_cpymem(p, ident->models[i].data, ident->models[i].len);
    }

    ngx_rbtree_insert(&cache->rbtree, &jn->node);
    ngx_queue_insert_head(&cache->lru, &jn->queue);
    cache->n++;
}


static void
ngx_http_ai_guard_jwt_cache_delete(ngx_http_ai_guard_jwt_node_t *jn)
{
    ngx_http_ai_guard_jwt_cache_t  *cache;

    cache = ngx_http_ai_guard_jwt_cache_p;

    ngx_rbtree_delete(&cache->rbtree, &jn->node);
    ngx_queue_remove(&jn->queue);
    cache->n--;

    ngx_free(jn);
}


static void
ngx_http_ai_guard_jwt_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                      rc;
    ngx_rbtree_node_t            **p;
    ngx_http_ai_guard_jwt_node_t  *jn, *jnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            jn = (ngx_http_ai_guard_jwt_node_t *) node;
            jnt = (ngx_http_ai_guard_jwt_node_t *) temp;

            rc = ngx_memcmp(jn->digest, jnt->digest,
                            NGX_HTTP_AI_GUARD_DIGEST_LEN);

            if (rc == 0) {
                rc = (jn->conf_id < jnt->conf_id) ? -1 : 1;
            }

            p = (rc < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
