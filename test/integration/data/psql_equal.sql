-- Run by 20_psql_equal.sh with psql -X -a, directly and through pgchorus;
-- both outputs must be identical.  ON_ERROR_STOP is off: errors are part of
-- the expected output.
\set ON_ERROR_STOP 0
\pset null '<null>'
set client_min_messages = notice;
drop table if exists no_such_table_here;

create type mood as enum ('sad', 'ok', 'happy');
create type pair as (a int, b text);
create table t_types (
    id        serial primary key,
    i2        int2,
    i4        int4,
    i8        int8,
    num       numeric(20, 5),
    f4        float4,
    f8        float8,
    b         boolean,
    t         text,
    vc        varchar(10),
    ch        char(5),
    by        bytea,
    d         date,
    tm        time,
    ts        timestamp,
    tstz      timestamptz,
    iv        interval,
    u         uuid,
    j         json,
    jb        jsonb,
    ia        int[],
    ta        text[],
    ip        inet,
    nw        cidr,
    mac       macaddr,
    pt        point,
    bx        box,
    tsv       tsvector,
    m         mood,
    pr        pair,
    r         int4range,
    x         xml
);
\d t_types

insert into t_types (i2, i4, i8, num, f4, f8, b, t, vc, ch, by, d, tm, ts, tstz, iv, u, j, jb,
                     ia, ta, ip, nw, mac, pt, bx, tsv, m, pr, r, x)
values (1, 100000, 9000000000000000000, 12345.67891, 1.5, 3.141592653589793, true,
        'plain text', 'short', 'ab', '\x00ff10', '2024-02-29', '13:45:01.5',
        '2024-02-29 13:45:01.123456', '2024-02-29 13:45:01+02', '1 year 2 mons 3 days 04:05:06',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": [true, false]}',
        '{1,2,3}', '{"x","y z",NULL}', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
        '(1.5,2.5)', '((0,0),(1,1))', 'the quick brown fox', 'happy', row(7, 'seven'), '[1,10)',
        '<a href="x">y</a>'),
       (-32768, -2147483648, -9223372036854775808, -0.00001, 'NaN', '-Infinity', false,
        E'tab\there\nnewline and ''quote'' and \\ backslash', '', '', '\x', '4713-01-01 BC', '00:00',
        'infinity', '-infinity', '-1 day', '00000000-0000-0000-0000-000000000000', '[]', '{}',
        '{}', '{}', '::1', '::/0', 'ff:ff:ff:ff:ff:ff', '(0,0)', '((-1,-1),(1,1))', '', 'sad',
        row(null, null), 'empty', '<r/>');
insert into t_types (t) values (null), ('héllo wörld'), ('日本語のテキスト'), ('emoji 🐘🎉'),
                               ('Ελληνικά'), ('кириллица');
select * from t_types order by id;
select id, t, length(t), octet_length(t), upper(t) from t_types where t is not null order by id;
\x on
select * from t_types where id = 1;
\x off

-- updates and deletes
update t_types set i4 = i4 + 1 where id = 1 returning id, i4;
update t_types set t = t || '!' where t like '%o%';
delete from t_types where t = 'Ελληνικά' returning id, t;
select id, t from t_types order by id;

-- errors
select 1/0;
select * from no_such_table;
selec 1;
insert into t_types (id) values (1);
insert into t_types (vc) values ('much too long for ten');
select 'still working after errors';

-- notices and warnings
do $$ begin raise notice 'hello from DO: %', 42; end $$;
do $$ begin raise warning 'a warning with detail' using detail = 'some detail', hint = 'a hint'; end $$;
do $$ begin raise exception 'custom failure' using errcode = 'P0001'; end $$;
\set VERBOSITY verbose
select 1/0;
\set VERBOSITY default

-- transactions
begin;
insert into t_types (t) values ('rolled back');
select count(*) from t_types where t = 'rolled back';
rollback;
select count(*) from t_types where t = 'rolled back';
begin;
insert into t_types (t) values ('committed');
commit;
select count(*) from t_types where t = 'committed';
begin;
select 1/0;
select 'ignored: transaction is aborted';
commit;
begin;
insert into t_types (t) values ('sp keep');
savepoint s1;
insert into t_types (t) values ('sp drop');
rollback to savepoint s1;
release savepoint s1;
commit;
select t from t_types where t like 'sp %' order by t;
begin;
set local search_path = pg_catalog;
show search_path;
commit;
begin;
prepare pq(int) as select $1 * 2 as doubled;
execute pq(21);
deallocate pq;
commit;
begin;
declare c cursor for select g, md5(g::text) from generate_series(1, 10) g;
fetch 3 from c;
fetch 3 from c;
close c;
commit;
begin isolation level serializable;
show transaction_isolation;
commit;

-- COPY with inline data
create table t_copy (id int, name text, score numeric, note text);
copy t_copy from stdin;
1	alice	10.5	\N
2	bob	-3	tab\there
3	cécile	0	日本
\.
copy t_copy from stdin with (format csv, header true);
id,name,score,note
4,"dave, jr",1e3,"line1
line2"
5,,,""
\.
copy t_copy to stdout;
copy (select * from t_copy order by id) to stdout with (format csv, header true);
copy t_copy from stdin;
6	bad	notanumber	x
\.
select count(*) from t_copy;

-- client-side \copy (files relative to the directory psql runs in)
create table t_bulk (id int primary key, label text, amount numeric, day date, tags text[]);
\copy t_bulk from 'bulk_in.tsv'
\copy t_bulk (id, label) from 'bulk_in_bad.tsv'
select count(*), sum(amount), min(day), max(day) from t_bulk;
\copy (select * from t_bulk order by id) to 'bulk_out.tsv'
\copy (select id, label from t_bulk where id <= 5 order by id) to stdout with (format csv)
drop table t_bulk;

-- settings reported to the client
set datestyle = 'SQL, DMY';
select date '2024-02-29', timestamp '2024-02-29 13:45:01';
set timezone = 'America/New_York';
select timestamptz '2024-07-01 12:00:00+00';
set intervalstyle = 'iso_8601';
select interval '1 day 2 hours';
reset all;
select date '2024-02-29', timestamptz '2024-07-01 12:00:00+00';

-- a bigger result
select g, md5(g::text), repeat('x', g % 50) from generate_series(1, 2000) g;
select count(*), sum(length(repeat('y', g))) from generate_series(1, 10000) g;

-- NULL handling
select null::int is null, coalesce(null, 'dflt'), nullif(1, 1), array[null, 1];
select * from (values (1, null), (null, 'b')) v(a, b) order by a nulls first;

drop table t_copy;
drop table t_types;
drop type pair;
drop type mood;
