-- class 3: INSERT giving only the payload (vd) or the key and the payload (vd2);
-- pgbench runs with -D n=0: n counts each client's transactions
\set n :n + 1
\set key :client_id * 100000000 + :n * 10
INSERT INTO vd (payload) VALUES ('insert');
INSERT INTO vd (payload) VALUES ('multi 1'), ('multi 2'), ('multi 3');
INSERT INTO vd2 (id, payload) VALUES (:key, 'insert');
INSERT INTO vd2 (id, payload) VALUES (:key + 1, 'multi 1'), (:key + 2, 'multi 2');
BEGIN;
INSERT INTO vd (payload) VALUES ('in a block');
INSERT INTO vd (payload) SELECT 'from a select ' || g FROM generate_series(1, 3) g;
INSERT INTO vd2 (id, payload) VALUES (:key + 3, 'in a block');
COMMIT;
