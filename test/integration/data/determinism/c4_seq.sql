-- class 4: SERIAL, BIGSERIAL, identity columns (ALWAYS, BY DEFAULT), nextval()
-- in a SELECT and in INSERT VALUES, currval() after an INSERT in the same
-- transaction, and now and then setval()
\set p random(1, 40)
\set v random(1, 1000000)
\set nv -1 * :v
INSERT INTO s_serial (c, note) VALUES (:client_id, 'serial');
INSERT INTO s_big (c, note) VALUES (:client_id, 'bigserial');
INSERT INTO s_ida (c, note) VALUES (:client_id, 'always');
INSERT INTO s_idd (c, note) VALUES (:client_id, 'by default');
INSERT INTO s_idd (id, c, note) VALUES (:nv, :client_id, 'explicit') ON CONFLICT (id) DO NOTHING;
SELECT nextval('xseq');
INSERT INTO s_x (id, c) VALUES (nextval('xseq'), :client_id);
BEGIN;
INSERT INTO s_big (c, note) VALUES (:client_id, 'in a block');
SELECT currval('s_big_id_seq');
INSERT INTO s_ref (big_id, c) VALUES (currval('s_big_id_seq'), :client_id);
INSERT INTO s_x (id, c) VALUES (nextval('xseq'), :client_id);
UPDATE s_x SET cur = currval('xseq') WHERE id = (SELECT currval('xseq'));
SELECT nextval('s_serial_id_seq');
COMMIT;
\if :p = 1
SELECT setval('cseq', :v);
\endif
UPDATE s_cnt SET v = nextval('cseq') WHERE id = :client_id;
