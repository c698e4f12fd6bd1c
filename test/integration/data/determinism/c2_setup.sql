-- class 2: values computed per call / per row
create extension if not exists "uuid-ossp";
create function vf() returns float8 volatile language sql as 'select random()';
create table rv (id int primary key, r float8, u uuid, u4 uuid, ct timestamptz, tod text, v float8, n int not null default 0);
create table rm (id bigint primary key, r float8, u uuid, v float8, ct timestamptz);
create table rs (id int primary key, r float8, u uuid, n int not null default 0);
-- written outside pgbench
create table r2 (id int primary key, r float8);
-- a table without a primary key (see 61_determinism.sh)
create table nopk (k int, r float8);
