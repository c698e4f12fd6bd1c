-- class 5: the rows UPDATE ... FROM reads are changed concurrently
\set r random(1, 10)
UPDATE rate SET f = f + 1 WHERE id = :r;
