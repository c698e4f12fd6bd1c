-- class 5: new items keep coming (-D n=0)
\set n :n + 1
\set key 1000 + :client_id * 100000000 + :n
INSERT INTO items (id, state) VALUES (:key, 'new');
