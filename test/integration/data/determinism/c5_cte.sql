-- class 5: a reading CTE over the whole of t (shipped as rows), and a
-- data-modifying CTE whose effect does not depend on other rows (runs as text)
\set n :n + 1
WITH s AS (SELECT sum(v) AS total, :client_id::int AS c, :n::int AS n FROM t) INSERT INTO log2 SELECT * FROM s;
WITH u AS (UPDATE t SET v = v + 10 WHERE id = 2 RETURNING v) INSERT INTO log3 SELECT u.v, :client_id, :n FROM u;
