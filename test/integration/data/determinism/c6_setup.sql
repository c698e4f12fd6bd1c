-- class 6: writes whose effect depends on the order rows are read in
create table src (id int primary key, v int not null);
create table dst (id serial primary key, v int);
create table q (id bigint primary key, v int);
create table w (id int primary key, grp int not null, v int not null);
create table jobs (id bigint primary key, payload text, taken_by int);
