/*
 * classify.h - statement classification with libpg_query.
 *
 * The router asks, for every SQL string a client sends (a simple Query, or
 * the text of a Parse), what kind of statement it is: a read that any node
 * can answer, a write that every node must apply, DDL, transaction control,
 * session state, or something that cannot run inside a transaction block.
 * The answer comes from PostgreSQL's own grammar (libpg_query 15, the
 * version Debian ships), never from matching keywords in the text.
 *
 * The classification is syntactic: what a trigger, a rule, a column
 * default or a user function does is invisible here.  Operators declare
 * such functions with classify_set_functions().  doc/classification.md
 * gives the rules and what the proxy will do with each class.
 *
 * Stack: classify_sql() refuses (STMT_F_UNANALYSED) statements whose parse
 * tree is too deep to parse or unpack safely; what it accepts needs at most
 * about 2 MB of stack (libuv threads get RLIMIT_STACK, 8 MB by default).
 */
#ifndef PGCHORUS_CLASSIFY_H
#define PGCHORUS_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Classes, weakest first: the class of a string is the strongest class of
 * its statements, so comparisons with < and > are meaningful.
 */
enum stmt_class {
	STMT_TXN,          /* only transaction control: BEGIN, COMMIT, SAVEPOINT, PREPARE TRANSACTION... */
	STMT_READ,         /* SELECT/VALUES/TABLE without writes or locks, SHOW, EXPLAIN, FETCH, COPY TO;
	                    * also the empty string and comments only (n_stmts 0) */
	STMT_SESSION,      /* SET/RESET, PREPARE, DEALLOCATE, LISTEN/UNLISTEN/NOTIFY, DISCARD, LOAD,
	                    * DECLARE/CLOSE cursor, SET CONSTRAINTS, SELECT set_config()/pg_notify() */
	STMT_WRITE,        /* INSERT/UPDATE/DELETE/MERGE, SELECT FOR UPDATE/SHARE, writing functions,
	                    * data-modifying CTEs, COPY FROM, CALL, DO, LOCK, EXECUTE, ANALYZE */
	STMT_DDL,          /* CREATE/ALTER/DROP/COMMENT/GRANT/REVOKE/TRUNCATE/REFRESH..., SELECT INTO,
	                    * and every other utility statement */
	STMT_NO_TXN_BLOCK, /* cannot run inside a transaction block: VACUUM, CREATE/DROP DATABASE,
	                    * CREATE/DROP TABLESPACE, ... CONCURRENTLY, ALTER SYSTEM, bare CLUSTER, DISCARD ALL */
	STMT_UNKNOWN,      /* syntax error: send it to the primary, which reports the error */
};

/* stmt_info.flags.  Transaction control: */
#define STMT_F_TXN_BEGIN         (1u << 0)  /* BEGIN, START TRANSACTION, COMMIT/ROLLBACK AND CHAIN */
#define STMT_F_TXN_COMMIT        (1u << 1)  /* COMMIT, END */
#define STMT_F_TXN_ROLLBACK      (1u << 2)  /* ROLLBACK, ABORT */
#define STMT_F_SAVEPOINT         (1u << 3)  /* SAVEPOINT */
#define STMT_F_RELEASE           (1u << 4)  /* RELEASE [SAVEPOINT] */
#define STMT_F_ROLLBACK_TO       (1u << 5)  /* ROLLBACK TO [SAVEPOINT] */
#define STMT_F_PREPARE_TXN       (1u << 6)  /* PREPARE TRANSACTION */
#define STMT_F_COMMIT_PREPARED   (1u << 7)  /* COMMIT PREPARED */
#define STMT_F_ROLLBACK_PREPARED (1u << 8)  /* ROLLBACK PREPARED */
/* Properties: */
#define STMT_F_NO_TXN_BLOCK      (1u << 9)  /* a statement cannot run inside a transaction block */
#define STMT_F_TEMP              (1u << 10) /* creates or names temporary objects (TEMP, pg_temp, DISCARD TEMP) */
#define STMT_F_LISTEN_NOTIFY     (1u << 11) /* LISTEN, UNLISTEN, NOTIFY, pg_notify() */
#define STMT_F_WITH_HOLD         (1u << 12) /* DECLARE ... WITH HOLD: the cursor outlives the transaction */
#define STMT_F_SET_LOCAL         (1u << 13) /* transaction-scoped setting: SET LOCAL, SET TRANSACTION,
                                             * SET CONSTRAINTS, set_config(..., true) */
#define STMT_F_LOCKING           (1u << 14) /* FOR UPDATE/NO KEY UPDATE/SHARE/KEY SHARE, LOCK TABLE */
#define STMT_F_VOLATILE          (1u << 15) /* a statement that runs on every node (class SESSION or
                                             * stronger) may give different results on different
                                             * nodes: random(), now(), nextval()..., LIMIT without
                                             * ORDER BY, SKIP LOCKED, TABLESAMPLE without REPEATABLE */
#define STMT_F_NOW               (1u << 16) /* a transaction-time expression: now(),
                                             * CURRENT_TIMESTAMP, 'now'::timestamptz... (any class:
                                             * reads see the replicated transaction's time too) */
#define STMT_F_EXECUTE           (1u << 17) /* SQL EXECUTE: the prepared statement is not known here,
                                             * it is classified as a WRITE */
#define STMT_F_COPY_FROM         (1u << 18) /* COPY ... FROM */
#define STMT_F_COPY_TO           (1u << 19) /* COPY ... TO */
#define STMT_F_COPY_FILE         (1u << 20) /* COPY with a server-side file or PROGRAM */
#define STMT_F_MULTI_WRITE       (1u << 21) /* two or more statements of the string are WRITE or stronger */
#define STMT_F_CURSOR            (1u << 22) /* DECLARE, FETCH, MOVE, CLOSE: uses a named cursor */
#define STMT_F_ADVISORY_LOCK     (1u << 23) /* pg_advisory_*lock*() */
#define STMT_F_SEQUENCE          (1u << 24) /* nextval, setval, currval, lastval */
#define STMT_F_LARGE_OBJECT      (1u << 25) /* lo_*() large object functions */
#define STMT_F_CATALOG           (1u << 27) /* reads a system catalog or view (pg_catalog, information_schema,
                                             * pg_*): OIDs and statistics differ between nodes */
#define STMT_F_OTHER_FN          (1u << 28) /* calls a function none of the lists above knows (count(),
                                             * lower(), a user's function...) */
#define STMT_F_UNANALYSED        (1u << 26) /* could not be analysed (parse tree too deep, out of
                                             * memory): cls is a conservative WRITE; reject it
                                             * (SQLSTATE 54001) rather than route it */

struct stmt_info {
	enum stmt_class cls;   /* strongest class of the statements of the string */
	int n_stmts;           /* statements in the string; 0 for empty/comments only/syntax error */
	uint32_t flags;        /* STMT_F_*, or of all statements */
};

/*
 * Classify SQL (NUL-terminated, any length).  Never fails: a syntax error
 * gives STMT_UNKNOWN with n_stmts 0 and no flags; what cannot be analysed
 * gives STMT_WRITE | STMT_F_UNANALYSED.  Thread-safe.
 */
void classify_sql(const char *sql, struct stmt_info *out);

/*
 * Declare functions (NULL-terminated arrays of names, NULL for an empty
 * list; names as PostgreSQL stores them, i.e. lower case unless quoted,
 * optionally "schema.name"):
 *   writing       - make the statement a WRITE (added to the built-in list);
 *   volatile_fns  - results differ between nodes (added to the built-in list);
 *   immutable_fns - declared safe: never STMT_F_VOLATILE/STMT_F_NOW, even if
 *                   built in (e.g. "now" when node clocks are trusted).
 * A plain name matches calls in any schema.  A qualified entry of the first
 * two lists also matches unqualified calls (search_path may resolve to it);
 * a qualified immutable entry matches only calls qualified the same way.
 * Replaces the previous lists; callable at any time from any thread (the
 * caches notice and empty themselves).  The strings are copied.  false on
 * out of memory (the previous lists stay).
 */
bool classify_set_functions(const char *const *writing, const char *const *volatile_fns,
                            const char *const *immutable_fns) __attribute__((warn_unused_result));

/* Is schema.name (schema NULL: unqualified) volatile for the classification
 * (built-in list and volatile_functions, minus immutable_functions)?  Thread-safe. */
bool classify_fn_volatile(const char *schema, const char *name, size_t nargs);
/* Is schema.name (schema NULL: unqualified) on the operator's immutable list? Thread-safe. */
bool classify_fn_immutable(const char *schema, const char *name, size_t nargs);

/* A date/time literal's text names the current time: it contains the word
 * now, today, tomorrow or yesterday ('now', 'today 10:00'...). */
bool classify_literal_names_now(const char *s);

/* "READ", "WRITE"...; "?" for a value out of range. */
const char *stmt_class_name(enum stmt_class cls);
/* Flag names separated by '|' into buf (always NUL-terminated); returns buf. */
char *stmt_flags_format(uint32_t flags, char *buf, size_t size);

/*
 * Per-thread cache of classifications for the extended protocol, so that a
 * statement parsed again and again is classified once.  Keyed by the text
 * (hash, then full compare); a bounded table with open addressing over a
 * window of slots, the least recently used of the window is replaced.
 * Not thread-safe: one cache per worker.
 */
struct classify_cache_entry {
	char *text;                /* NULL: free slot */
	size_t len;
	uint64_t hash;
	uint64_t last_use;
	struct stmt_info info;
};

struct classify_cache {
	struct classify_cache_entry *slots;
	size_t cap;                /* power of two */
	size_t max_text;           /* longer texts are classified but not kept */
	size_t count;
	uint64_t tick;
	unsigned generation;       /* function lists the entries were computed with */
	uint64_t hits, misses, evictions;
	struct stmt_info scratch;  /* result for texts not kept */
};

/* n_entries (rounded up to a power of two, 0: 1024) and max_text (0: 16 KiB). */
bool classify_cache_init(struct classify_cache *c, size_t n_entries, size_t max_text)
	__attribute__((warn_unused_result));
void classify_cache_destroy(struct classify_cache *c);
void classify_cache_clear(struct classify_cache *c);

/*
 * Classification of sql[0..len) (need not be NUL-terminated; like the
 * server, the parser stops at a NUL byte).  The result is owned by the
 * cache and valid until the next call on it.  Never fails.
 */
const struct stmt_info *classify_cached(struct classify_cache *c, const char *sql, size_t len);

/*
 * The same; when the text is parsed (not found in the cache), FN(ARG, info,
 * pb, len) is called with the classification and the parse tree as
 * libpg_query packed it, so that a caller needing the tree too does not
 * parse the text again.
 */
typedef void classify_pb_fn(void *arg, const struct stmt_info *info, const uint8_t *pb, size_t len);
const struct stmt_info *classify_cached_cb(struct classify_cache *c, const char *sql, size_t len,
					   classify_pb_fn *fn, void *arg);

#endif
