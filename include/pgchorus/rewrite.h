/*
 * rewrite.h - make transaction-time expressions read one shared value.
 *
 * A statement that every node runs must see the same transaction time on
 * every node.  rewrite_now() replaces now(), CURRENT_TIMESTAMP, 'now'::date
 * and their relatives by an expression REF that the caller chooses (a
 * literal for the simple protocol, an extra parameter for the extended
 * one), so that the nodes all read the time from the proxy.
 *
 * Positions come from PostgreSQL's own parser and scanner (libpg_query 15):
 * parse tree node locations give where an expression starts, the scanner's
 * tokens where it ends.  Only those byte ranges change: quoting, comments
 * and dollar quotes around them are kept as they are.
 *
 * Rewritten (in the statements that run now: SELECT/VALUES, INSERT, UPDATE,
 * DELETE, MERGE, CALL, COPY, DECLARE, EXECUTE, EXPLAIN, CREATE TABLE AS, the
 * USING expressions of ALTER TABLE ... ALTER COLUMN TYPE), anywhere in them
 * (subqueries, CTEs, function arguments, RETURNING), in every statement of
 * a multi-statement string:
 *   now(), transaction_timestamp(), unqualified or
 *   pg_catalog.-qualified, no arguments        -> (REF)
 *   CURRENT_TIMESTAMP                           -> (REF)
 *   CURRENT_TIMESTAMP(p)                        -> ((REF)::timestamptz(p))
 *   LOCALTIMESTAMP[(p)]                         -> ((REF)::timestamp[(p)])
 *   CURRENT_DATE                                -> ((REF)::date)
 *   CURRENT_TIME[(p)]                           -> ((REF)::timetz[(p)])
 *   LOCALTIME[(p)]                              -> ((REF)::time[(p)])
 *   the literal 'now' cast to timestamptz, timestamp, date, time or timetz:
 *     'now'::date, CAST('now' AS date)          -> (REF)::date, CAST((REF) AS date)
 *                                                  (only the literal changes)
 *     date 'now'                                -> ((REF)::date)
 * statement_timestamp() is left alone (it differs per statement): a write
 * using it is shipped as rows (ship.h).  Where a call names a column of a SELECT or RETURNING
 * list ("SELECT now()" gives a column "now"), the replacement is a scalar
 * subquery that keeps the name: (SELECT (REF) AS "now").
 *
 * Left as they are:
 *   - stored expressions: view, rule, trigger, function bodies (a body
 *     between $$ is a string anyway), column defaults, PREPARE (runs in
 *     later transactions), CREATE MATERIALIZED VIEW;
 *   - clock_timestamp(), timeofday(), random()...: not transaction time;
 *   - now() as a FROM item (SELECT * FROM now()): only a function call may
 *     stand there; counted in n_left;
 *   - 'today', 'tomorrow', 'yesterday' and other time words cast to a time
 *     type: counted in n_left;
 *   - 'now' that the server types from the context without a cast (INSERT
 *     INTO t (ts) VALUES ('now')), 'now'::text::timestamptz, a user's
 *     function that calls now(): invisible in the text;
 *   - ALTER TABLE ... ADD COLUMN/SET DEFAULT now(): counted in n_left.
 *
 * Stack: texts of 512 bytes or more are first checked with classify_sql()
 * (its depth guards); what it cannot analyse is refused (error).
 */
#ifndef PGCHORUS_REWRITE_H
#define PGCHORUS_REWRITE_H

#include <stdbool.h>

struct rewrite_result {
	char *sql;        /* malloc'd rewritten text; NULL when nothing was replaced or on error */
	int n_replaced;   /* expressions replaced */
	int n_left;       /* transaction-time expressions seen but left as they are (see above) */
	int max_param;    /* highest $n of the ORIGINAL text, 0 if none (also set on a parse error
	                   * when the scanner could read the text) */
	bool error;       /* could not scan, parse or rewrite (or out of memory): send the original */
};

/*
 * Rewrite the transaction-time expressions of sql (NUL-terminated) to read
 * REF, an SQL expression of type timestamptz (e.g.
 * "'2026-11-21 08:40:00.123456+00'::timestamptz" or "$5::timestamptz"),
 * inserted verbatim.  Always fills *out; free it with rewrite_result_free().
 * Thread-safe.
 */
void rewrite_now(const char *sql, const char *ref, struct rewrite_result *out);

/* Frees out->sql and clears *r. */
void rewrite_result_free(struct rewrite_result *r);

/*
 * Highest $n parameter number of sql (NUL-terminated), 0 if none, -1 when
 * the scanner cannot read it (e.g. an unterminated quoted string).  Runs
 * the scanner only, not the parser.  Numbers above INT_MAX read INT_MAX.
 */
int rewrite_max_param(const char *sql);

#endif
