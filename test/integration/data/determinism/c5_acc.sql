-- class 5: UPDATE ... FROM a table that other clients update
\set a random(1, 1000)
UPDATE acc SET bal = acc.bal + rate.f FROM rate WHERE rate.id = acc.id % 10 + 1 AND acc.id = :a;
