-- part 8: INSERT through a view with a DO INSTEAD rule (-D off=N -D n=0)
\set n :n + 1
\set id :off + :client_id * 1000 + :n
INSERT INTO rv VALUES (:id, 'v');
