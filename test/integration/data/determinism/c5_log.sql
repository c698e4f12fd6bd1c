-- class 5 (the issue's example), reader-writer: INSERT INTO log SELECT v FROM t
-- WHERE id = 1 (the key is the client and its transaction counter n, -D n=0)
\set n :n + 1
INSERT INTO log SELECT v, :client_id, :n FROM t WHERE id = 1;
