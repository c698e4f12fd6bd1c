-- class 2: random(), gen_random_uuid(), uuid_generate_v4(), clock_timestamp(),
-- timeofday() and a VOLATILE SQL function, in single-row and multi-row
-- INSERT VALUES, in UPDATE SET over one row and over a range of rows (one
-- value per row).  Each client updates ranges only inside its own 250 ids
-- (client_id 0..3): the range UPDATEs never wait for each other, so no
-- deadlock on a single node.
\set id random(1, 1000)
\set m random(1, 3000000)
\set a :client_id * 250 + random(1, 229)
\set s random(1, 5000)
INSERT INTO rv (id, r, u, u4, ct, tod, v) VALUES (:id, random(), gen_random_uuid(), uuid_generate_v4(), clock_timestamp(), timeofday(), vf())
	ON CONFLICT (id) DO UPDATE SET r = random(), u = gen_random_uuid(), n = rv.n + 1;
INSERT INTO rm (id, r, u, v, ct) VALUES
	(:m * 3, random(), gen_random_uuid(), vf(), clock_timestamp()),
	(:m * 3 + 1, random(), uuid_generate_v4(), vf(), clock_timestamp()),
	(:m * 3 + 2, random() * 2, gen_random_uuid(), vf() + random(), clock_timestamp())
	ON CONFLICT (id) DO NOTHING;
UPDATE rv SET r = random(), v = vf(), ct = clock_timestamp(), tod = timeofday() WHERE id BETWEEN :a AND :a + 20;
BEGIN;
UPDATE rv SET r = r + random(), u4 = uuid_generate_v4() WHERE id = :id;
INSERT INTO rs (id, r, u) VALUES (:s, vf(), gen_random_uuid()) ON CONFLICT (id) DO UPDATE SET r = random(), n = rs.n + 1;
COMMIT;
