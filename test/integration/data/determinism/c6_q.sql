-- class 6: inserts, and DELETE of "some 3 rows" (LIMIT without ORDER BY over ctid)
\set n :n + 1
\set key 1000 + :client_id * 100000000 + :n * 3
INSERT INTO q (id, v) VALUES (:key, :n), (:key + 1, :n), (:key + 2, :n);
DELETE FROM q WHERE ctid IN (SELECT ctid FROM q LIMIT 3);
