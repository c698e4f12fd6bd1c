-- class 5 (the issue's example), writer: UPDATE t SET v = v + 1 WHERE id = 1
UPDATE t SET v = v + 1 WHERE id = 1;
