-- part 8: what runs as text, what is refused, and the routing around them
create table ins_only (id serial primary key, v text);
create table ins_plain (id int primary key, v text);
create table base (id int primary key, v text);
create view rv as select * from base;
create rule rv_ins as on insert to rv do instead insert into base values (new.id, new.v);
create table audit (id int primary key, t text);
create function add_audit(i int) returns int language plpgsql as $$ begin insert into audit values (i, 'x'); return i; end $$;
create table twice (a int);
create role det_writer login;
grant insert on ins_only, ins_plain to det_writer;
grant usage on sequence ins_only_id_seq to det_writer;
