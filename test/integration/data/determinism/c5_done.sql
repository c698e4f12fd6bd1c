-- class 5: UPDATE and DELETE whose predicate matches rows other clients insert
-- and change
\set k random(0, 6)
UPDATE items SET state = 'done' WHERE state = 'new' AND id % 7 = :k;
DELETE FROM items WHERE state = 'done' AND id % 11 = :k;
