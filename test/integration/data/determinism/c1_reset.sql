truncate tm, tm_ev, t1same;
