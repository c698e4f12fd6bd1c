-- class 3: volatile column defaults, the columns omitted by INSERT and COPY
create table vd (
	id bigserial primary key,
	u uuid default gen_random_uuid(),
	r float8 default random(),
	t timestamptz default clock_timestamp(),
	n timestamptz default now(),
	payload text);
-- the same defaults with keys chosen by the client (no sequence involved)
create table vd2 (
	id bigint primary key,
	u uuid default gen_random_uuid(),
	r float8 default random(),
	t timestamptz default clock_timestamp(),
	n timestamptz default now(),
	payload text);
