vcl 4.1;
# Varnish in front of feedsvc (granian on 127.0.0.1:8000), for Debian's varnish 7.1 with
# varnish-modules (xkey). Start it with Varnish's own gzip handling off, so readers get
# feedsvc's brotli and gzip bytes and their ETags unchanged:
#
#   varnishd -a :80 -f /srv/feedsvc/app/deploy/varnish.vcl -s malloc,256m \
#       -p http_gzip_support=off
#
# and run feedsvc with FEEDSVC_EDGE_MAX_AGE=86400 FEEDSVC_PURGE_URLS=http://127.0.0.1:80.
# One site per Varnish: objects are keyed by path and query, not by Host.

import std;
import xkey;

backend feedsvc {
    .host = "127.0.0.1";
    .port = "8000";
    # Sick after two failed checks out of three: stale copies are then served (grace).
    .probe = {
        .url = "/healthz";
        .interval = 1s;
        .timeout = 2s;
        .window = 3;
        .threshold = 2;
        .initial = 2;
    }
}

# Who may purge: the address feedsvc's PURGE requests come from.
acl purgers {
    "127.0.0.1";
}

sub vcl_recv {
    if (req.restarts == 0) {
        unset req.http.X-Edge-Refetch;
        unset req.http.X-Edge-Stale-Ok;
    }
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey) {
            set req.http.X-Edge-Purged = xkey.purge(req.http.xkey);
            return (synth(200, "Purged " + req.http.X-Edge-Purged));
        }
        return (purge);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # One object per coding feedsvc serves: br, gzip or none (a q=0 refuses a coding).
    if (req.http.Accept-Encoding ~ "(?i)\bbr\b" && req.http.Accept-Encoding !~ "(?i)\bbr\s*;\s*q=0(\.0*)?\s*(,|$)") {
        set req.http.Accept-Encoding = "br";
    } elsif (req.http.Accept-Encoding ~ "(?i)\bgzip\b" && req.http.Accept-Encoding !~ "(?i)\bgzip\s*;\s*q=0(\.0*)?\s*(,|$)") {
        set req.http.Accept-Encoding = "gzip";
    } else {
        unset req.http.Accept-Encoding;
    }
    # Feeds vary on Accept only between browsers (HTML, no feed type) and everything else.
    if (req.http.Accept ~ "text/html" && req.http.Accept !~ "application/(rss|atom|feed)\+(xml|json)") {
        set req.http.Accept = "text/html";
    } else {
        unset req.http.Accept;
    }
    unset req.http.Cookie;
    if (req.http.X-Edge-Refetch) {
        set req.grace = 0s;  # the stale copy may not be served: wait for the origin
    }
    return (hash);
}

sub vcl_hash {
    hash_data(req.url);
    return (lookup);
}

sub vcl_hit {
    # Past its lifetime, a copy is served while a new one is fetched only within its
    # stale-while-revalidate; beyond that, only while the origin is down (stale-if-error).
    if (obj.ttl < 0s && !req.http.X-Edge-Stale-Ok && std.healthy(req.backend_hint)
        && obj.ttl + std.duration(regsub(obj.http.Surrogate-Control,
            "^(?:.*[ ,])?stale-while-revalidate=([0-9]+).*$", "\1s"), 0s) < 0s) {
        set req.http.X-Edge-Refetch = "1";
        return (restart);
    }
}

sub vcl_backend_response {
    if (beresp.http.Surrogate-Control ~ "(^|[ ,])max-age=[0-9]+") {
        set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control,
            "^(?:.*[ ,])?max-age=([0-9]+).*$", "\1s"), 0s);
        set beresp.grace = std.duration(regsub(beresp.http.Surrogate-Control,
            "^(?:.*[ ,])?stale-if-error=([0-9]+).*$", "\1s"), 0s);
    } elsif (!beresp.http.Cache-Control) {
        # Error pages say nothing about caching: a 404 may be an article due any minute.
        set beresp.ttl = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
    # Kept past its grace to revalidate it with its ETag: the origin answers 304, no body.
    set beresp.keep = 7d;
}

sub vcl_backend_error {
    # The origin cannot be reached: let the client side serve a stale copy if it has one.
    return (abandon);
}

sub vcl_synth {
    if (resp.status == 503 && req.http.X-Edge-Refetch && !req.http.X-Edge-Stale-Ok
        && req.restarts < 3) {
        set req.http.X-Edge-Stale-Ok = "1";
        unset req.http.X-Edge-Refetch;
        return (restart);
    }
}

sub vcl_deliver {
    # The edge's own lifetime and keys are for caches, not for readers.
    unset resp.http.Surrogate-Control;
    unset resp.http.CDN-Cache-Control;
    unset resp.http.Surrogate-Key;
    unset resp.http.xkey;
    unset resp.http.Via;
    unset resp.http.X-Varnish;
}
