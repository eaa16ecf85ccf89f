/*
 * agent - an AI agent's side of ztb, in one small program: enroll once with
 * a join token, then ask for a token for one action and either print it or
 * call a URL with it (and a DPoP proof when the token is bound).
 *
 *   ztb-agent-example --broker http://127.0.0.1:8443 --name billing-bot \
 *       --credential-file ./billing-bot.pem --join-token ztbj_...   # once
 *   ztb-agent-example --broker http://127.0.0.1:8443 --name billing-bot \
 *       --credential-file ./billing-bot.pem \
 *       --audience payments --action payments:refund --resource orders/1234 \
 *       --details '{"amount":40}' --call http://127.0.0.1:8080/refunds/1234
 *
 * When policy wants a human to approve the action (a refund above the
 * agent's autonomous limit), the broker answers "pending" with an approval
 * id: the agent prints it and, with --approval-wait SECONDS, polls until an
 * operator runs `ztbctl approvals approve ID` (or denies it, or it expires).
 * Without --approval-wait it exits 3; asking again for exactly the same
 * request later finds the same approval.
 *
 * The join token may also come from $ZTB_JOIN_TOKEN (better than the command
 * line, which other users can see). Exit status: 0 done, 1 refused or failed
 * (the reason on stderr), 2 usage, 3 waiting for an approval.
 *
 * Build outside the ztb tree against an installed libztb:
 *   cc main.c $(pkg-config --cflags --libs ztb libcurl) -o ztb-agent-example
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <ztb/ztb.h>

struct args {
    const char *broker, *name, *trust_domain, *cred_file, *join_token, *ca_file;
    const char *audience, *action, *resource, *details, *call, *method, *approval_wait;
    int dpop;
};

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --broker URL --name NAME [--trust-domain TD] [--credential-file FILE]\n"
            "          [--ca-file PEM] [--join-token T (or $ZTB_JOIN_TOKEN)] [--dpop]\n"
            "          [--audience AUD --action SERVICE:VERB [--resource R] [--details JSON]\n"
            "           [--call URL [--method METHOD]] [--approval-wait SECONDS]]\n",
            argv0);
    return 2;
}

static int parse(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof(*a));
    a->method = "POST";
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = strcmp(k, "--broker") == 0            ? &a->broker
                            : strcmp(k, "--name") == 0            ? &a->name
                            : strcmp(k, "--trust-domain") == 0    ? &a->trust_domain
                            : strcmp(k, "--credential-file") == 0 ? &a->cred_file
                            : strcmp(k, "--ca-file") == 0         ? &a->ca_file
                            : strcmp(k, "--join-token") == 0      ? &a->join_token
                            : strcmp(k, "--audience") == 0        ? &a->audience
                            : strcmp(k, "--action") == 0          ? &a->action
                            : strcmp(k, "--resource") == 0        ? &a->resource
                            : strcmp(k, "--details") == 0         ? &a->details
                            : strcmp(k, "--call") == 0            ? &a->call
                            : strcmp(k, "--method") == 0          ? &a->method
                            : strcmp(k, "--approval-wait") == 0   ? &a->approval_wait
                                                                  : NULL;
        if (strcmp(k, "--dpop") == 0) {
            a->dpop = 1;
        } else if (slot != NULL && v != NULL) {
            *slot = v;
            i++;
        } else {
            return -1;
        }
    }
    if (a->join_token == NULL)
        a->join_token = getenv("ZTB_JOIN_TOKEN");
    if (a->broker == NULL || a->name == NULL || (a->audience == NULL) != (a->action == NULL))
        return -1;
    return 0;
}

static int fail(const char *what, ztb_err rv, const ztb_agent *a)
{
    fprintf(stderr, "agent: %s: %s (%s)%s%s\n", what, ztb_strerror(rv), ztb_err_name(rv),
            ztb_agent_errdetail(a)[0] ? ": " : "", ztb_agent_errdetail(a));
    return 1;
}

/*
 * A token for the action, waiting up to wait_s seconds for a human's
 * approval when policy asks for one: the non-blocking handle, polled at the
 * broker's interval (ztb_agent_token_wait does the same in one call).
 */
static ztb_err token_with_approval(ztb_agent *agent, const struct args *a, unsigned wait_s,
                                   char **token)
{
    ztb_approval *p = NULL;
    ztb_err rv =
        ztb_agent_token_start(agent, a->audience, a->action, a->resource, a->details, token, &p);
    if (rv != ZTB_ERR_APPROVAL_PENDING)
        return rv;
    fprintf(stderr, "agent: approval %s pending: an operator runs `ztbctl approvals approve %s`\n",
            ztb_approval_id(p), ztb_approval_id(p));
    for (unsigned waited = 0; rv == ZTB_ERR_APPROVAL_PENDING && waited < wait_s;) {
        unsigned step = ztb_approval_interval(p);
        sleep(step);
        waited += step;
        rv = ztb_approval_poll(p, token);
    }
    if (rv == ZTB_OK)
        fprintf(stderr, "agent: approval %s granted\n", ztb_approval_id(p));
    ztb_approval_free(p);
    return rv;
}

static size_t print_body(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)ud;
    fwrite(data, size, nmemb, stdout);
    return size * nmemb;
}

/* Call url with the token (and a DPoP proof if the token is bound). */
static int call(ztb_agent *agent, const struct args *a, const char *token)
{
    char *proof = NULL;
    if (a->dpop) {
        ztb_err rv = ztb_dpop_proof(agent, a->method, a->call, token, &proof);
        if (rv != ZTB_OK)
            return fail("DPoP proof", rv, agent);
    }
    size_t hl = strlen(token) + 32;
    char *authz = malloc(hl);
    char *dpop_hdr = proof ? malloc(strlen(proof) + 8) : NULL;
    if (authz == NULL || (proof != NULL && dpop_hdr == NULL)) {
        free(authz);
        ztb_token_free(proof);
        return 1;
    }
    snprintf(authz, hl, "Authorization: %s %s", a->dpop ? "DPoP" : "Bearer", token);
    struct curl_slist *h = curl_slist_append(NULL, authz);
    if (proof != NULL) {
        sprintf(dpop_hdr, "DPoP: %s", proof);
        h = curl_slist_append(h, dpop_hdr);
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, a->call);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, a->method);
    if (strcmp(a->method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->details ? a->details : "{}");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, print_body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    /* the headers held the token and the proof */
    ztb_token_free(authz);
    ztb_token_free(dpop_hdr);
    ztb_token_free(proof);
    printf("\n");
    if (rc != CURLE_OK) {
        fprintf(stderr, "agent: %s: %s\n", a->call, curl_easy_strerror(rc));
        return 1;
    }
    fprintf(stderr, "agent: %s %s -> HTTP %ld\n", a->method, a->call, status);
    return status >= 200 && status < 300 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct args a;
    if (parse(argc, argv, &a) != 0)
        return usage(argv[0]);

    ztb_agent_config *cfg = ztb_agent_config_new();
    if (cfg == NULL)
        return 1;
    ztb_err rv = ztb_agent_config_set_broker(cfg, a.broker);
    if (rv == ZTB_OK)
        rv = ztb_agent_config_set_name(cfg, a.name);
    if (rv == ZTB_OK && a.trust_domain != NULL)
        rv = ztb_agent_config_set_trust_domain(cfg, a.trust_domain);
    if (rv == ZTB_OK && a.cred_file != NULL)
        rv = ztb_agent_config_set_credential_file(cfg, a.cred_file);
    if (rv == ZTB_OK && a.ca_file != NULL)
        rv = ztb_agent_config_set_ca_file(cfg, a.ca_file);
    if (rv == ZTB_OK)
        rv = ztb_agent_config_set_dpop(cfg, a.dpop);
    ztb_agent *agent = NULL;
    if (rv == ZTB_OK)
        rv = ztb_agent_new(cfg, &agent);
    ztb_agent_config_free(cfg);
    if (rv != ZTB_OK)
        return fail("configuration", rv, NULL);

    int status = 0;
    if (!ztb_agent_is_enrolled(agent) || (a.join_token != NULL && a.action == NULL)) {
        if (a.join_token == NULL) {
            fprintf(stderr, "agent: not enrolled: give a join token (--join-token or "
                            "$ZTB_JOIN_TOKEN)\n");
            status = 1;
            goto out;
        }
        rv = ztb_agent_enroll(agent, a.join_token);
        if (rv != ZTB_OK) {
            status = fail("enroll", rv, agent);
            goto out;
        }
        fprintf(stderr, "agent: enrolled as %s until %lld\n", ztb_agent_spiffe_id(agent),
                (long long)ztb_agent_identity_expires_at(agent));
    }
    if (a.action != NULL) {
        char *token = NULL;
        unsigned wait_s = a.approval_wait ? (unsigned)strtoul(a.approval_wait, NULL, 10) : 0;
        rv = token_with_approval(agent, &a, wait_s, &token);
        if (rv == ZTB_ERR_APPROVAL_PENDING) {
            status = 3;
            goto out;
        }
        if (rv != ZTB_OK) {
            status = fail("token", rv, agent);
            goto out;
        }
        if (a.call != NULL)
            status = call(agent, &a, token);
        else
            printf("%s\n", token);
        ztb_token_free(token);
    }
out:
    ztb_agent_free(agent);
    return status;
}
