-- class 6: INSERT ... SELECT without ORDER BY into a table with a serial key:
-- which row gets which id depends on the order src is read in
INSERT INTO dst (v) SELECT v FROM src;
