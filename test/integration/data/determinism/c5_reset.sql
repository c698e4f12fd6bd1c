truncate t, log, log2, log3, rate, acc, items;
insert into t values (1, 0), (2, 0), (3, 0);
insert into rate select g, 1 from generate_series(1, 10) g;
insert into acc select g, 0 from generate_series(1, 1000) g;
insert into items select g, 'new' from generate_series(1, 500) g;
