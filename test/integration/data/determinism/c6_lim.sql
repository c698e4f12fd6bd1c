-- class 6: UPDATE of "some 5 rows" (LIMIT without ORDER BY).  Each client
-- updates only its own group of rows: the multi-row UPDATEs never wait for
-- each other, so no deadlock on a single node.
UPDATE w SET v = v + 1 WHERE id IN (SELECT id FROM w WHERE grp = :client_id LIMIT 5);
