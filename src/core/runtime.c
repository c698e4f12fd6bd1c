/*
 * runtime.c - derived parts of a configuration snapshot (see runtime.h).
 */
#include <stdio.h>

#include "pgchorus/classify.h"
#include "pgchorus/hba.h"
#include "pgchorus/runtime.h"
#include "pgchorus/tls.h"
#include "pgchorus/users.h"

static void runtime_release(struct config *cfg)
{
	tls_ctx_unref(cfg->tls_server);
	tls_ctx_unref(cfg->tls_client);
	if (cfg->users)
		users_free(cfg->users);
	if (cfg->hba)
		hba_free(cfg->hba);
	cfg->tls_server = cfg->tls_client = NULL;
	cfg->users = NULL;
	cfg->hba = NULL;
}

int runtime_prepare(struct config *cfg, char *err, size_t errlen)
{
	char sub[512];

	cfg->release_derived = runtime_release;
	if (!classify_set_functions((const char *const *)cfg->writing_functions,
				    (const char *const *)cfg->volatile_functions,
				    (const char *const *)cfg->immutable_functions)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (cfg->users_file[0]) {
		cfg->users = users_load(cfg->users_file, sub, sizeof(sub));
		if (!cfg->users) {
			snprintf(err, errlen, "users_file: %s", sub);
			goto fail;
		}
	}
	if (cfg->hba_file[0]) {
		cfg->hba = hba_load(cfg->hba_file, sub, sizeof(sub));
		if (!cfg->hba) {
			snprintf(err, errlen, "hba_file: %s", sub);
			goto fail;
		}
	}
	cfg->tls_server = tls_ctx_new_server(cfg, sub, sizeof(sub));
	if (!cfg->tls_server && sub[0]) {
		snprintf(err, errlen, "TLS (tls_cert_file / tls_key_file): %s", sub);
		goto fail;
	}
	cfg->tls_client = tls_ctx_new_client(cfg, sub, sizeof(sub));
	if (!cfg->tls_client && sub[0]) {
		snprintf(err, errlen, "TLS to nodes (server_tls): %s", sub);
		goto fail;
	}
	return 0;
fail:
	runtime_release(cfg);
	return -1;
}
