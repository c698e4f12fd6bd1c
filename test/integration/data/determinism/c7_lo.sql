-- class 7: new large objects (the server picks their OIDs) from several
-- clients, in autocommit and in a transaction block (-D n=0); a document
-- stores the OID of an object made just before
\set n :n + 1
\set key :client_id * 100000000 + :n
SELECT lo_from_bytea(0, '\x0102');
SELECT lo_create(0);
SELECT lo_from_bytea(0, convert_to('doc ' || :key, 'UTF8')) AS lo \gset
INSERT INTO docs (id, lo) VALUES (:key, :lo);
BEGIN;
SELECT lo_create(0);
SELECT lo_from_bytea(0, '\x0a0b0c');
COMMIT;
