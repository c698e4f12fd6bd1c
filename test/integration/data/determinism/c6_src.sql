-- class 6: src changes (which moves its rows around in the heap)
\set s random(1, 20)
UPDATE src SET v = v + 1 WHERE id = :s;
