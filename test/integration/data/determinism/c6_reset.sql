truncate src, dst, q, w, jobs restart identity;
insert into src select g, g from generate_series(1, 20) g;
insert into q select g, g from generate_series(1, 100) g;
insert into w select g, g % 8, 0 from generate_series(1, 400) g;
insert into jobs (id, payload) select g, 'job ' || g from generate_series(1, 300) g;
