-- class 6: a job queue; each worker takes the first job nobody has taken,
-- skipping the ones another worker holds
UPDATE jobs SET taken_by = :client_id
	WHERE id = (SELECT id FROM jobs WHERE taken_by IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
	RETURNING id;
