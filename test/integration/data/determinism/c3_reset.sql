truncate vd, vd2 restart identity;
