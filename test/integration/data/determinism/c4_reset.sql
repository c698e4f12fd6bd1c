truncate s_serial, s_big, s_ida, s_idd, s_ref, s_x, s_cnt restart identity;
alter sequence xseq restart;
alter sequence cseq restart;
insert into s_cnt select g, 0 from generate_series(0, 15) g;
