-- class 5: writes whose effect depends on the snapshot (rows other clients change)
create table t (id int primary key, v bigint not null);
create table log (v bigint, c int, n int, primary key (c, n));
create table log2 (total bigint, c int, n int, primary key (c, n));
create table log3 (v bigint, c int, n int, primary key (c, n));
create table rate (id int primary key, f int not null);
create table acc (id int primary key, bal bigint not null);
create table items (id bigint primary key, state text not null);
