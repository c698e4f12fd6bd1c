-- class 7: large objects
create table docs (id bigint primary key, lo oid);
