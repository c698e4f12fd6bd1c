/*
 * admin.h - the SQL admin console (database "pgchorus"): STUB, being written.
 */
#ifndef PGCHORUS_ADMIN_H
#define PGCHORUS_ADMIN_H
#endif
