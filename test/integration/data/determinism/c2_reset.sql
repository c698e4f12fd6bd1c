truncate rv, rm, rs, r2, nopk;
-- even ids exist, odd ones are inserted by the workload
insert into rv (id, r) select g, 0 from generate_series(2, 1000, 2) g;
insert into r2 select g, 0 from generate_series(1, 100) g;
insert into nopk select g % 10, 0 from generate_series(1, 20) g;
