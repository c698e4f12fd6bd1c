-- class 6: new jobs keep coming (-D n=0)
\set n :n + 1
INSERT INTO jobs (id, payload) VALUES (1000 + :n, 'new job');
